using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent status NAME</c> (alias <c>inspect</c>).</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var cmd = new Command("status", """
            Show a workspace: state and why, config, pids, readiness (guestReady, execReady), disk usage, kernel and rootfs hashes.
            A workspace whose supervisor or VM died is reported as failed/stopped with the reason.

            Examples:
              microagent status research
              microagent status research --json
            """);
        cmd.Aliases.Add("inspect");
        cmd.Arguments.Add(name);
        cmd.SetAction(async (r, ct) =>
        {
            var s = await new WorkspaceManager(GlobalOptions.Paths(r)).GetStatusAsync(r.GetValue(name)!, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(s, Cli.Json.WorkspaceStatus);
            else Render.Status(s);
            return 0;
        });
        return cmd;
    }
}
