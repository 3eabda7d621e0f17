using System.CommandLine;
using Microagent.Workspaces;
using Microagent.Workspaces.Containment;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent quarantine NAME --reason TEXT [--no-capture] [--dry-run]</c> (docs/ARCHITECTURE.md "Quarantine").</summary>
internal static class QuarantineCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var reason = new Option<string>("--reason") { Description = "Why (required; one line, at most 200 characters; kept in the containment record and the state)", Required = true };
        var noCapture = new Option<bool>("--no-capture") { Description = "Skip the forensic snapshot (also: finish a quarantine whose capture failed)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the phases that would run, without doing anything" };
        var cmd = new Command("quarantine", $"""
            Contain a running or paused workspace you no longer trust, in this order, each phase recorded with its status and time
            in the containment record (`microagent status NAME --json`, "containment"):
            {string.Join("\n", QuarantinePhases.Ordered.Select(p => $"  {p,-16}{QuarantinePhases.Describe(p)}"))}
            The state is then quarantined: `start` refuses it until `halt`, `stop` or `kill` releases it (the guest is never thawed),
            and the next start boots from the preserved disk. The forensic snapshot (snapshots/forensic-<time>/: memory.elf, an
            ELF core, and the frozen disk layer) cannot be restored or forked. Interrupted (Ctrl-C, a crash) or failed: the record
            says how far it got and running the same command again completes it; a failed capture leaves the guest frozen and
            severed, and --no-capture finishes without it.

            Examples:
              microagent quarantine research --reason "unexpected outbound traffic"
              microagent quarantine research --reason "retry" --no-capture
              microagent kill research && microagent start research
            """);
        cmd.Arguments.Add(name);
        cmd.Options.Add(reason);
        cmd.Options.Add(noCapture);
        cmd.Options.Add(dryRun);
        cmd.SetAction(async (r, ct) =>
        {
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            string n = r.GetValue(name)!, why = r.GetValue(reason)!;
            bool capture = !r.GetValue(noCapture);
            var result = r.GetValue(dryRun) ? manager.PlanQuarantine(n, why, capture) : await manager.QuarantineAsync(n, why, capture, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.QuarantineResult);
            else Print(result);
            return 0;
        });
        return cmd;
    }

    private static void Print(QuarantineResult result)
    {
        if (result.Preview)
        {
            Console.WriteLine($"quarantine of {result.Name} ({Render.State(result.State)}) would run:");
            foreach (string a in result.Actions) Console.WriteLine($"  {a}");
            return;
        }
        Console.WriteLine($"{result.Name} is {Render.State(result.State)}: {result.Record.Reason}");
        foreach (var p in result.Record.Phases)
            Console.WriteLine($"  {p.Name,-16}{p.Status.ToString().ToLowerInvariant(),-12}{(p.At is { } at ? at.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture) + "  " : "")}{p.Detail}");
        Console.WriteLine($"release it with `microagent halt {result.Name}` or `microagent kill {result.Name}`; then `microagent start {result.Name}` boots from its disk");
    }
}
