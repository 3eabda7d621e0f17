using System.CommandLine;
using System.Text.Json;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent events NAME [--follow]</c>: the lifecycle events.</summary>
internal static class EventsCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events until the workspace stops (or Ctrl-C)" };
        var cmd = new Command("events", """
            Print the workspace's state changes {workspace, state, previous, detail, observedAt}.
            --json prints a JSON array; with --follow, one JSON object per line.

            Examples:
              microagent events research
              microagent events research --json
            """);
        cmd.Arguments.Add(name);
        cmd.Options.Add(follow);
        cmd.SetAction(async (r, ct) =>
        {
            bool json = r.GetValue(GlobalOptions.Json), f = r.GetValue(follow);
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            var list = new List<WorkspaceEvent>();
            await foreach (var e in manager.ReadEventsAsync(r.GetValue(name)!, f, ct))
            {
                if (json && !f) { list.Add(e); continue; }
                if (json) Console.WriteLine(JsonSerializer.Serialize(e, Cli.JsonLine.WorkspaceEvent));
                else Console.WriteLine($"{e.ObservedAt:yyyy-MM-dd HH:mm:ss.fff}  {e.Previous?.WireName() ?? "-",-11} → {Render.State(e.State),-11}  {(e.Detail ?? "").Split('\n')[0]}");
            }
            if (json && !f) Cli.WriteJson(list, Cli.Json.ListWorkspaceEvent);
            return 0;
        });
        return cmd;
    }
}
