using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent halt NAME...</c> (alias <c>stop</c>) and <c>microagent kill NAME...</c>.</summary>
internal static class HaltCommand
{
    private static Argument<string[]> Names() => new("name") { Description = "Workspace name(s)", Arity = ArgumentArity.OneOrMore };

    private static Option<string?> Reason() => new("--reason") { Description = "Why, recorded in the workspace's event history (`microagent events NAME`)" };

    public static Command Create()
    {
        var names = Names();
        var reason = Reason();
        var timeout = new Option<TimeSpan?>("--timeout") { Description = "How long the guest may take to power off before it is killed and marked failed (default 20s): seconds, or 5s, 1m" };
        var cmd = new Command("halt", """
            Power workspaces off gracefully, keeping their disks (not their memory). Not running: nothing to do.
            Several names: each is halted in turn and each outcome reported; the exit code is that of the first failure.

            Examples:
              microagent halt research
              microagent stop research --timeout 5s
              microagent halt a b c --reason 'end of the experiment'
            """);
        cmd.Aliases.Add("stop");
        cmd.Arguments.Add(names);
        cmd.Options.Add(timeout);
        cmd.Options.Add(reason);
        cmd.SetAction(async (r, ct) =>
        {
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            return await EachName.RunAsync(r, r.GetValue(names)!, n => manager.HaltAsync(n, r.GetValue(timeout), r.GetValue(reason), ct),
                Outcome, Print, s => Cli.WriteJson(s, Cli.Json.WorkspaceStatus), s => s.State == WorkspaceState.Failed && s.Previous == WorkspaceState.Stopping ? 1 : 0);
        });
        return cmd;
    }

    public static Command CreateKill()
    {
        var names = Names();
        var reason = Reason();
        var cmd = new Command("kill", """
            Stop workspaces' VMs at once (no guest shutdown; recent writes may be lost). The disks are kept.
            Several names: each is killed in turn and each outcome reported; the exit code is that of the first failure.

            Examples:
              microagent kill research
              microagent kill a b --reason 'runaway loop'
            """);
        cmd.Arguments.Add(names);
        cmd.Options.Add(reason);
        cmd.SetAction(async (r, ct) =>
        {
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            return await EachName.RunAsync(r, r.GetValue(names)!, n => manager.KillAsync(n, r.GetValue(reason), ct),
                Outcome, Print, s => Cli.WriteJson(s, Cli.Json.WorkspaceStatus), _ => 0);
        });
        return cmd;
    }

    private static NameOutcomeJson Outcome(WorkspaceStatus s) =>
        new(s.Name, !(s.State == WorkspaceState.Failed && s.Previous == WorkspaceState.Stopping), s.State.WireName(), s.Detail, null);

    private static void Print(WorkspaceStatus s) => Console.WriteLine($"{s.Name} is {Render.State(s.State)}{(s.Detail is { } d ? $": {d}" : "")}");
}
