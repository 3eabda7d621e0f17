using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent delete NAME...</c> (alias <c>rm</c>).</summary>
internal static class DeleteCommand
{
    public static Command Create()
    {
        var names = new Argument<string[]>("name") { Description = "Workspace name(s)", Arity = ArgumentArity.OneOrMore };
        var yes = new Option<bool>("--yes", "-y") { Description = "Halt a running workspace first" };
        var force = new Option<bool>("--force") { Description = "Kill a running workspace first" };
        var cmd = new Command("delete", """
            Delete workspaces: disk, config, logs, events. A running one is a conflict unless --yes (halt first) or --force (kill first).
            Deleting a workspace that does not exist succeeds and says so. Several names: each is deleted in turn and each
            outcome reported; the exit code is that of the first failure.

            Examples:
              microagent delete research --yes
              microagent rm scratch --force
              microagent delete a b c --yes --json
            """);
        cmd.Aliases.Add("rm");
        cmd.Arguments.Add(names);
        cmd.Options.Add(yes);
        cmd.Options.Add(force);
        cmd.SetAction(async (r, ct) =>
        {
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            var options = new DeleteOptions { StopRunning = r.GetValue(yes), Force = r.GetValue(force) };
            return await EachName.RunAsync(r, r.GetValue(names)!, n => manager.DeleteAsync(n, options, ct),
                d => new NameOutcomeJson(d.Name, true, null, Describe(d), null),
                d => Console.WriteLine(Describe(d)), d => Cli.WriteJson(d, Cli.Json.DeleteResult), _ => 0);
        });
        return cmd;
    }

    private static string Describe(DeleteResult d) =>
        d.Existed ? $"deleted {d.Name}{(d.StoppedFirst ? " (stopped it first)" : "")}" : $"no workspace named '{d.Name}'; nothing to delete";
}
