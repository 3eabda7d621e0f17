using System.Text.Json.Nodes;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>workspace_ps: one stats sample of every running or paused workspace.</summary>
/// <param name="Workspaces">By name.</param>
public sealed record WorkspaceStatsList(IReadOnlyList<WorkspaceStats> Workspaces);

/// <summary>Tools of the CLI's <c>stats</c> and <c>ps</c> (docs/ARCHITECTURE.md "Stats"): thin calls into the library.</summary>
public sealed partial class ToolCatalog
{
    private const string StatsFigures =
        "cpu.percent is the host CPU of the VM's QEMU process averaged over the window (100 = one host core busy; N vCPUs can reach N x 100); " +
        "host_memory: QEMU and supervisor RSS/PSS bytes; guest_memory: the guest kernel's total, available and used bytes (null while paused " +
        "or when the guest does not answer within a second); disks: bytes and requests per drive since boot, with disk_read_bytes/disk_write_bytes " +
        "totals; network: egress and published-port bytes since boot; sampled_at.";

    private void AddStatsTools()
    {
        var interval = Schema.Integer($"Sample window in milliseconds (default {WorkspaceLimits.DefaultStatsIntervalMs}).", WorkspaceLimits.StatsIntervalMs);

        Add("workspace_stats", "Workspace resource use", ToolHints.Query,
            "One resource sample of a running or paused workspace, taken over interval_ms (another state is a conflict). " + StatsFigures,
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["interval_ms"] = interval.DeepClone(),
            }, "name"), McpJson.Context.WorkspaceStats,
            call => Workspaces.GetStatsAsync(Name(call), IntervalOf(call), call.Cancellation));

        Add("workspace_ps", "Running workspaces' resource use", ToolHints.Query,
            "Every running or paused workspace with its uptime and one resource sample (all over one window). " + StatsFigures,
            Schema.Object(new JsonObject { ["interval_ms"] = interval.DeepClone() }), McpJson.Context.WorkspaceStatsList,
            async call => new WorkspaceStatsList(await Workspaces.ListStatsAsync(IntervalOf(call), call.Cancellation).ConfigureAwait(false)));
    }

    private static TimeSpan? IntervalOf(ToolCall call) =>
        call.Integer("interval_ms", WorkspaceLimits.StatsIntervalMs) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;
}
