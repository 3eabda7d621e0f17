using System.CommandLine;
using System.Text;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent exec NAME [options] -- CMD...</c>: one command in a running workspace.</summary>
internal static class ExecCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var env = new Option<string[]>("--env", "-e") { Description = "Environment KEY=VALUE (repeatable)", AllowMultipleArgumentsPerToken = false };
        var cwd = new Option<string?>("--cwd") { Description = "Working directory in the guest" };
        var user = new Option<string?>("--user", "-u") { Description = "Guest user (name, uid or uid:gid)" };
        var stdin = new Option<string?>("--stdin") { Description = "Feed this file to the command's stdin (`-` = this process's stdin); default: empty stdin" };
        var timeout = new Option<TimeSpan?>("--timeout") { Description = "Kill the command after this long (exit 124): seconds, or 300ms, 30s, 5m, 1h" };
        var maxOutput = new Option<long?>("--max-output") { Description = "Per-stream output limit in bytes (excess dropped, flagged in --json)" };
        var command = new Argument<string[]>("command") { Description = "The command and its arguments, after `--` (no implied shell)", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("exec", """
            Run a command in a running workspace. stdout/stderr stream live; the guest's exit code becomes microagent's
            (128+N when killed by signal N, 124 on --timeout, 127 when the command does not exist).

            Examples:
              microagent exec research -- uname -a
              microagent exec research --cwd /tmp -e A=1 -- sh -c 'echo $A > f; cat f'
              microagent exec research --stdin data.csv -- wc -l
            """);
        cmd.Arguments.Add(name);
        foreach (var o in new Option[] { env, cwd, user, stdin, timeout, maxOutput }) cmd.Options.Add(o);
        cmd.Arguments.Add(command);
        cmd.SetAction(async (r, ct) =>
        {
            WorkspaceArgs.RejectOptionLikeArguments(r, "exec");
            bool json = r.GetValue(GlobalOptions.Json);
            Stream? input = r.GetValue(stdin) switch
            {
                null => null,
                "-" => Console.OpenStandardInput(),
                string path => File.OpenRead(path),
            };
            await using var _ = input;
            var options = new ExecOptions
            {
                Command = r.GetValue(command) ?? [],
                Env = r.GetValue(env) ?? [],
                Cwd = r.GetValue(cwd),
                User = r.GetValue(user),
                Timeout = r.GetValue(timeout),
                MaxOutputBytes = r.GetValue(maxOutput),
                Stdin = input,
            };
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            string ws = r.GetValue(name)!;
            if (json)
            {
                var result = await manager.ExecAsync(ws, options, ct);
                Cli.WriteJson(new ExecJson(ws, result.Status, result.ExitCode, result.Signal, Decode(result.Stdout), Decode(result.Stderr),
                    result.StdoutTruncated, result.StderrTruncated, result.DurationMs, result.Error, result.OomKilled, result.Note), Cli.Json.ExecJson);
                return result.ExitCode;
            }
            var streamed = await manager.ExecStreamAsync(ws, options, Console.OpenStandardOutput(), Console.OpenStandardError(), ct);
            if (streamed.Error is not null) Console.Error.WriteLine($"microagent: {streamed.Error}");
            if (streamed.Note is not null) Console.Error.WriteLine($"microagent: {streamed.Note}");
            return streamed.ExitCode;
        });
        return cmd;
    }

    private static string? Decode(byte[]? bytes) => bytes is null ? null : Encoding.UTF8.GetString(bytes);
}
