using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent stats NAME [--follow]</c> and <c>microagent ps</c>: resource use of active workspaces (docs/ARCHITECTURE.md "Stats").</summary>
internal static class StatsCommand
{
    private static readonly string[] Headers = ["NAME", "STATE", "UPTIME", "CPU %", "QEMU RSS/PSS", "SUPERVISOR", "GUEST MEM", "DISK R/W", "NET IN/OUT"];

    private const string Figures = """
        CPU % is the host CPU time (user + system) of the VM's QEMU process averaged over the sample window: 100 % = one host
        core busy, so a VM with N vCPUs can reach N × 100 %. QEMU RSS/PSS is its host memory (RSS counts the guest RAM it has
        touched; PSS shares pages out), SUPERVISOR the supervisor's RSS. GUEST MEM is what the guest kernel says is in use
        (MemTotal − MemAvailable) of its MemTotal; '-' while paused or when the guest does not answer within a second. DISK R/W
        is bytes read and written by the guest on all its drives since boot (QEMU's block stats); NET IN/OUT bytes into and out of
        the guest through the egress broker and published ports since boot.
        """;

    private static Option<TimeSpan?> Interval() => new("--interval", "-i")
    {
        Description = $"Window of each sample; CPU % is the average over it (default {WorkspaceLimits.DefaultStatsIntervalMs / 1000}s; " +
            $"{WorkspaceLimits.StatsIntervalMs.Min}ms..{WorkspaceLimits.StatsIntervalMs.Max / 3_600_000}h): seconds, or 500ms, 2s, 1m",
    };

    public static Command Create()
    {
        var name = WorkspaceArgs.Name("Workspace name (running or paused)");
        var follow = new Option<bool>("--follow", "-f") { Description = "Print a new sample every interval until the workspace stops (or Ctrl-C)" };
        var interval = Interval();
        var cmd = new Command("stats", $$"""
            Show a running workspace's resource use: CPU, host memory of its VM, guest memory in use, disk read/write bytes,
            network bytes and when it was sampled. Takes one sample over --interval (default {{WorkspaceLimits.DefaultStatsIntervalMs / 1000}} s);
            --follow prints a new one every interval. A workspace that is not running or paused is an error (exit 1).
            --json prints one document; with --follow, one JSON object per line per sample.

            {{Figures}}

            Examples:
              microagent stats dev
              microagent stats dev --follow --interval 5s
              microagent stats dev --json | jq .cpu.percent
              microagent stats dev --follow --json | jq -c '{at: .sampledAt, cpu: .cpu.percent}'
            """);
        cmd.Arguments.Add(name);
        cmd.Options.Add(follow);
        cmd.Options.Add(interval);
        cmd.SetAction(async (r, ct) =>
        {
            bool json = r.GetValue(GlobalOptions.Json);
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            if (!r.GetValue(follow))
            {
                var s = await manager.GetStatsAsync(r.GetValue(name)!, r.GetValue(interval), ct);
                if (json) Cli.WriteJson(s, Cli.Json.WorkspaceStats);
                else Render.Table(Headers, [Row(s)]);
                return 0;
            }
            bool first = true;
            try
            {
                await foreach (var s in manager.FollowStatsAsync(r.GetValue(name)!, r.GetValue(interval), ct))
                {
                    if (json) Console.WriteLine(JsonSerializer.Serialize(s, Cli.JsonLine.WorkspaceStats));
                    else
                    {
                        if (first) Console.WriteLine(Fixed(Headers));
                        Console.WriteLine(Fixed(Row(s)));
                    }
                    first = false;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested && !first) { } // Ctrl-C is how a follow ends: nothing was interrupted
            return 0;
        });
        return cmd;
    }

    public static Command CreatePs()
    {
        var interval = Interval();
        var cmd = new Command("ps", $"""
            List the running and paused workspaces with their uptime and resource use (the figures of `microagent stats`), one
            sample of all of them over one --interval (default {WorkspaceLimits.DefaultStatsIntervalMs / 1000} s). `microagent ls` lists every workspace.
            --json prints a JSON array of the stats documents.

            {Figures}

            Examples:
              microagent ps
              microagent ps --interval 500ms
              microagent ps --json | jq -r '.[] | "\(.name) \(.cpu.percent)"'
            """);
        cmd.Options.Add(interval);
        cmd.SetAction(async (r, ct) =>
        {
            var all = await new WorkspaceManager(GlobalOptions.Paths(r)).ListStatsAsync(r.GetValue(interval), ct);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(all, Cli.Json.IReadOnlyListWorkspaceStats); return 0; }
            if (all.Count == 0) { Console.WriteLine("no running workspaces; `microagent ls` lists them all"); return 0; }
            Render.Table(Headers, all.Select(Row));
            return 0;
        });
        return cmd;
    }

    private static IReadOnlyList<string> Row(WorkspaceStats s) =>
    [
        s.Name, Render.State(s.State), s.UptimeSeconds is { } u ? Uptime(u) : "-",
        s.Cpu.Percent.ToString("0.0", CultureInfo.InvariantCulture),
        $"{Render.Bytes(s.HostMemory.QemuRssBytes)} / {Render.Bytes(s.HostMemory.QemuPssBytes)}",
        Render.Bytes(s.HostMemory.SupervisorRssBytes),
        s.GuestMemory is { } g ? $"{Render.Bytes(g.UsedBytes)} / {Render.Bytes(g.TotalBytes)}" : "-",
        $"{Render.Bytes(s.DiskReadBytes)} / {Render.Bytes(s.DiskWriteBytes)}",
        s.Network is { } n ? $"{Render.Bytes(n.EgressBytesIn + n.PublishedBytesIn)} / {Render.Bytes(n.EgressBytesOut + n.PublishedBytesOut)}" : "-",
    ];

    /// <summary>Columns of a followed sample: fixed widths, so each new line lines up with the header printed once.</summary>
    private static string Fixed(IReadOnlyList<string> cells)
    {
        int[] widths = [16, 8, 8, 7, 22, 12, 22, 22, 20];
        return string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
    }

    /// <summary>5s, 3m12s, 2h05m, 3d04h.</summary>
    public static string Uptime(long seconds) => seconds switch
    {
        < 60 => $"{seconds}s",
        < 3600 => $"{seconds / 60}m{seconds % 60:00}s",
        < 86400 => $"{seconds / 3600}h{seconds % 3600 / 60:00}m",
        _ => $"{seconds / 86400}d{seconds % 86400 / 3600:00}h",
    };
}
