using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent delete NAME</c> (alias <c>rm</c>).</summary>
internal static class DeleteCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var yes = new Option<bool>("--yes", "-y") { Description = "Halt a running workspace first" };
        var force = new Option<bool>("--force") { Description = "Kill a running workspace first" };
        var cmd = new Command("delete", """
            Delete a workspace: disk, config, logs, events. A running one is a conflict unless --yes (halt first) or --force (kill first).
            Deleting a workspace that does not exist succeeds and says so.

            Examples:
              microagent delete research --yes
              microagent rm scratch --force
            """);
        cmd.Aliases.Add("rm");
        cmd.Arguments.Add(name);
        cmd.Options.Add(yes);
        cmd.Options.Add(force);
        cmd.SetAction(async (r, ct) =>
        {
            var result = await new WorkspaceManager(GlobalOptions.Paths(r)).DeleteAsync(r.GetValue(name)!,
                new DeleteOptions { StopRunning = r.GetValue(yes), Force = r.GetValue(force) }, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.DeleteResult);
            else Console.WriteLine(result.Existed ? $"deleted {result.Name}{(result.StoppedFirst ? " (stopped it first)" : "")}" : $"no workspace named '{result.Name}'; nothing to delete");
            return 0;
        });
        return cmd;
    }
}
