using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent halt NAME</c> (alias <c>stop</c>) and <c>microagent kill NAME</c>.</summary>
internal static class HaltCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var timeout = new Option<double?>("--timeout") { Description = "Seconds the guest may take to power off before it is killed and marked failed (default 20)" };
        var cmd = new Command("halt", "Power the workspace off gracefully, keeping its disk (not its memory). Not running: nothing to do.\n\nExamples:\n  microagent halt research\n  microagent stop research --timeout 5");
        cmd.Aliases.Add("stop");
        cmd.Arguments.Add(name);
        cmd.Options.Add(timeout);
        cmd.SetAction(async (r, ct) =>
        {
            var s = await new WorkspaceManager(GlobalOptions.Paths(r)).HaltAsync(r.GetValue(name)!, r.GetValue(timeout) is { } t ? TimeSpan.FromSeconds(t) : null, ct);
            Print(r, s);
            return s.State == WorkspaceState.Failed && s.Previous == WorkspaceState.Stopping ? 1 : 0;
        });
        return cmd;
    }

    public static Command CreateKill()
    {
        var name = WorkspaceArgs.Name();
        var cmd = new Command("kill", "Stop the workspace's VM at once (no guest shutdown; recent writes may be lost). The disk is kept.\n\nExamples:\n  microagent kill research");
        cmd.Arguments.Add(name);
        cmd.SetAction(async (r, ct) =>
        {
            Print(r, await new WorkspaceManager(GlobalOptions.Paths(r)).KillAsync(r.GetValue(name)!, ct));
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
