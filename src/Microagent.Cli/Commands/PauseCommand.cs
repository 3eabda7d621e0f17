using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent pause NAME [--reason TEXT]</c> and <c>microagent resume NAME</c>.</summary>
internal static class PauseCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var reason = new Option<string?>("--reason") { Description = "Why (shown by status and events; at most 200 characters)" };
        var cmd = new Command("pause", "Freeze the workspace's vCPUs in place (memory, processes and connections are kept). While paused, exec and cp " +
            "are refused (conflict) and the idle lease (--ttl) does not run down. Thaw it with `microagent resume`.\n\nExamples:\n" +
            "  microagent pause research --reason \"waiting for review\"\n  microagent resume research");
        cmd.Arguments.Add(name);
        cmd.Options.Add(reason);
        cmd.SetAction(async (r, ct) =>
        {
            Print(r, await new WorkspaceManager(GlobalOptions.Paths(r)).PauseAsync(r.GetValue(name)!, r.GetValue(reason), ct));
            return 0;
        });
        return cmd;
    }

    public static Command CreateResume()
    {
        var name = WorkspaceArgs.Name();
        var cmd = new Command("resume", "Thaw a paused workspace where it stopped; its wall clock is set from the host. A workspace the host paused " +
            "(disk full) resumes once the disk has room again. Not `start`: that boots a stopped workspace from its disk.\n\nExamples:\n" +
            "  microagent resume research");
        cmd.Arguments.Add(name);
        cmd.SetAction(async (r, ct) =>
        {
            Print(r, await new WorkspaceManager(GlobalOptions.Paths(r)).ResumeAsync(r.GetValue(name)!, ct));
            return 0;
        });
        return cmd;
    }

    private static void Print(ParseResult r, WorkspaceStatus s)
    {
        if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(s, Cli.Json.WorkspaceStatus);
        else Console.WriteLine($"{s.Name} is {Render.State(s.State)}{(s.Detail is { } d ? $": {d}" : "")}");
    }
}
