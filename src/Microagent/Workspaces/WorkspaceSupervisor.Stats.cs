using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>The supervisor's share of <c>stats</c> (docs/ARCHITECTURE.md "Stats"): what only it can measure, through the QMP connection and the host listeners it holds.</summary>
internal sealed partial class WorkspaceSupervisor
{
    /// <summary>Longest the guest may take to answer <c>guest-stats</c> before the sample goes without it.</summary>
    private static readonly TimeSpan GuestStatsWait = TimeSpan.FromSeconds(1);

    private IReadOnlyList<string> _diskNames = [];

    async Task<SupervisorStats> IControlHandler.StatsAsync(CancellationToken ct)
    {
        var stats = new SupervisorStats { Network = NetworkBytes() };
        if (Volatile.Read(ref _vm) is not { } vm) return stats;
        try
        {
            foreach (var d in await vm.BlockStatsAsync(ct).ConfigureAwait(false))
                stats.Disks.Add(new DiskIoStats(DiskName(d.Device), d.ReadBytes, d.WriteBytes, d.ReadOps, d.WriteOps));
        }
        catch (Exception e) when (e is MicroagentException or IOException && !ct.IsCancellationRequested) { }
        stats.GuestMemory = await GuestMemoryAsync(vm, ct).ConfigureAwait(false);
        return stats;
    }

    /// <summary>The name a stats sample gives QEMU drive <paramref name="device"/>: <c>root</c>, or <c>data{i}</c>'s disk name.</summary>
    private string DiskName(string device) =>
        device.StartsWith("data", StringComparison.Ordinal) && int.TryParse(device.AsSpan(4), out int i) && i >= 0 && i < _diskNames.Count ? _diskNames[i] : device;

    private NetworkIoStats NetworkBytes()
    {
        var egress = Volatile.Read(ref _broker)?.Counters;
        var published = Volatile.Read(ref _published);
        return new NetworkIoStats(_network.Mode, egress?.BytesOut ?? 0, egress?.BytesIn ?? 0, published?.BytesIn ?? 0, published?.BytesOut ?? 0,
            (egress?.Active ?? 0) + (published?.ActiveConnections ?? 0));
    }

    /// <summary>The guest's own memory figures (agent <c>guest-stats</c>); null when it is not running or does not answer within <see cref="GuestStatsWait"/>.</summary>
    private async Task<GuestMemoryStats?> GuestMemoryAsync(WorkspaceVm vm, CancellationToken ct)
    {
        if (_store.ReadState().State != WorkspaceState.Running) return null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(GuestStatsWait);
        try
        {
            var g = await vm.Agent.GuestStatsAsync(timeout.Token).ConfigureAwait(false);
            return new GuestMemoryStats(g.MemTotalBytes, g.MemAvailableBytes, Math.Max(0, g.MemTotalBytes - g.MemAvailableBytes), g.UptimeMs);
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException or ProtocolException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }
}
