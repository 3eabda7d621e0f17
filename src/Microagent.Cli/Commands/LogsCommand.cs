using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent logs NAME [--follow]</c>: the guest serial console.</summary>
internal static class LogsCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new output until the workspace stops (or Ctrl-C)" };
        var cmd = new Command("logs", "Print the workspace's serial console log (kernel and agent messages).\n\nExamples:\n  microagent logs research\n  microagent logs research --follow");
        cmd.Arguments.Add(name);
        cmd.Options.Add(follow);
        cmd.SetAction(async (r, ct) =>
        {
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            if (r.GetValue(GlobalOptions.Json))
            {
                var ms = new MemoryStream();
                await manager.ReadLogAsync(r.GetValue(name)!, ms, false, ct);
                Cli.WriteJson(new LogsJson(r.GetValue(name), System.Text.Encoding.UTF8.GetString(ms.ToArray())), Cli.Json.LogsJson);
                return 0;
            }
            await using var stdout = Console.OpenStandardOutput();
            await manager.ReadLogAsync(r.GetValue(name)!, stdout, r.GetValue(follow), ct);
            return 0;
        });
        return cmd;
    }
}
