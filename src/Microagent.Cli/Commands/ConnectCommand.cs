using System.CommandLine;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent connect NAME [--send LINE [--timeout T]]</c>: the workspace's console (docs/ARCHITECTURE.md "Console").</summary>
internal static class ConnectCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var send = new Option<string?>("--send") { Description = "Run this one line through the console, print its output (no prompt, no echo) and exit with its status" };
        var timeout = new Option<TimeSpan?>("--timeout") { Description = "With --send: give up after this long (default 5s): seconds, or 300ms, 30s, 5m; the error carries the partial output" };
        var cmd = new Command("connect", $"""
            Open an interactive console on a running workspace: a login shell on a terminal in the guest (the workspace's shell,
            `create --shell`; else the image's /bin/bash, else /bin/sh). Your terminal's size follows into the guest as it changes.
            Detach with {ConsoleDetachKeys.Help}: the shell is hung up and the workspace keeps running. When the shell exits,
            microagent exits with its status. An open console keeps the idle lease (--ttl) alive. Needs a terminal on stdin,
            except with --send.

            Examples:
              microagent connect research
              microagent connect research --send 'cd /srv && ls -l'
              microagent connect research --send 'make test' --timeout 2m --json
            """);
        cmd.Arguments.Add(name);
        cmd.Options.Add(send);
        cmd.Options.Add(timeout);
        cmd.SetAction(async (r, ct) =>
        {
            bool json = r.GetValue(GlobalOptions.Json);
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            string ws = r.GetValue(name)!;
            if (r.GetValue(send) is { } line) return await SendAsync(manager, ws, line, r.GetValue(timeout), json, ct);
            if (r.GetValue(timeout) is not null)
                throw new MicroagentException(ErrorKind.Invalid, "--timeout applies to --send only") { Field = "timeout_ms" };
            if (json) throw MicroagentException.Invalid("an interactive console has no --json form", "use --send LINE --json to run one line");
            if (!ConsoleTerminal.Available)
                throw MicroagentException.Invalid("connect needs a terminal on stdin", "run it from a terminal, or use --send LINE");
            await using var session = await manager.ConnectAsync(ws, ConsoleTerminal.Options(), ct);
            var end = await ConsoleTerminal.RunAsync(session, ct);
            return end?.ExitCode ?? 0;
        });
        return cmd;
    }

    private static async Task<int> SendAsync(WorkspaceManager manager, string ws, string line, TimeSpan? timeout, bool json, CancellationToken ct)
    {
        ConsoleSendResult result;
        try { result = await manager.SendLineAsync(ws, line, timeout, ct); }
        catch (ConsoleTimeoutException e) when (!json)
        {
            await WriteRawAsync(e.PartialOutput); // what it printed so far, then the error on stderr
            throw;
        }
        if (json) Cli.WriteJson(new ConsoleSendJson(ws, result.Output, result.ExitCode, result.DurationMs), Cli.Json.ConsoleSendJson);
        else await WriteRawAsync(result.Output);
        return result.ExitCode;
    }

    private static Task WriteRawAsync(string text)
    {
        ConsoleTerminal.WriteStdout(System.Text.Encoding.UTF8.GetBytes(text));
        return Task.CompletedTask;
    }
}
