using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent gc</c>: reap orphans.</summary>
internal static class GcCommand
{
    public static Command Create()
    {
        var cmd = new Command("gc", "Reap what is orphaned: workspaces whose supervisor died (state corrected), stray QEMU processes, stale sockets, directories of one-shot runs that were killed.\n\nExamples:\n  microagent gc --json");
        cmd.SetAction(async (r, ct) =>
        {
            var report = await new WorkspaceManager(GlobalOptions.Paths(r)).GcAsync(ct);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(report, Cli.Json.GcReport); return 0; }
            Console.WriteLine($"reconciled {report.Reconciled.Count} workspace(s){Names(report.Reconciled)}, killed {report.KilledQemu.Count} stray QEMU, removed {report.RemovedSockets.Count} stale socket(s) and {report.RemovedRuns.Count} run dir(s){Names(report.RemovedRuns)}");
            return 0;
        });
        return cmd;
    }

    private static string Names(IReadOnlyList<string> names) => names.Count == 0 ? "" : $" ({string.Join(", ", names)})";
}
