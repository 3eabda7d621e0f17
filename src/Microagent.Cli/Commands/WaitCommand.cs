using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent wait NAME [--timeout S]</c>.</summary>
internal static class WaitCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var timeout = new Option<TimeSpan?>("--timeout") { Description = "Give up after this long (exit 75): seconds, or 30s, 5m, 1h" };
        var cmd = new Command("wait", "Wait until the workspace is halted, stopped or failed (e.g. its workload ended or its idle lease expired).\n\nExamples:\n  microagent wait job --timeout 600\n  microagent wait job --timeout 10m --json");
        cmd.Arguments.Add(name);
        cmd.Options.Add(timeout);
        cmd.SetAction(async (r, ct) =>
        {
            var s = await new WorkspaceManager(GlobalOptions.Paths(r)).WaitAsync(r.GetValue(name)!, r.GetValue(timeout), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(s, Cli.Json.WorkspaceStatus);
            else Console.WriteLine($"{s.Name} is {Render.State(s.State)}{(s.Detail is { } d ? $": {d}" : "")}");
            return 0;
        });
        return cmd;
    }
}
