using System.Text.Json.Nodes;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>
/// workspace_console_send: what the line printed (stdout and stderr together, no prompt or echo) and its exit status; on a
/// timeout, <c>timed_out</c> with the partial output and no exit status.
/// </summary>
public sealed record ConsoleSendOutput(string Workspace, string Output, int? ExitCode, bool TimedOut, long DurationMs, string? Note);

/// <summary>The console tool (docs/ARCHITECTURE.md "Console"): one line through the workspace's console; an interactive session has no MCP form.</summary>
public sealed partial class ToolCatalog
{
    /// <summary>Longest timeout a console line may be given over MCP.</summary>
    private const long MaxConsoleTimeoutMs = 10 * 60 * 1000;

    private void AddConsoleTools()
    {
        Add("workspace_console_send", "Send a line to the workspace's console", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false),
            "Run one shell line through a fresh console session of a running workspace (a login shell on a terminal, as `microagent connect " +
            "--send`) and return what it printed — stdout and stderr together, without the prompt and the echo — and its exit status. For " +
            "commands that need a terminal; workspace_exec is the structured way to run a program. The line must not read the terminal. " +
            "Past timeout_ms (default 5000) the result is timed_out with the partial output.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name (must be running)."),
                ["line"] = Schema.String("One shell line (no newline), e.g. \"cd /srv && ls -l\"."),
                ["timeout_ms"] = Schema.Integer("Give up after this long (default 5000).", 1, MaxConsoleTimeoutMs),
            }, "name", "line"), McpJson.Context.ConsoleSendOutput,
            async call =>
            {
                string name = Name(call);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                TimeSpan? timeout = call.Integer("timeout_ms", 1, MaxConsoleTimeoutMs) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;
                try
                {
                    var r = await Workspaces.SendLineAsync(name, call.String("line", required: true)!, timeout, call.Cancellation).ConfigureAwait(false);
                    return new ConsoleSendOutput(name, r.Output, r.ExitCode, false, r.DurationMs, null);
                }
                catch (ConsoleTimeoutException e)
                {
                    return new ConsoleSendOutput(name, e.PartialOutput, null, true, clock.ElapsedMilliseconds, e.Message);
                }
            });
    }
}
