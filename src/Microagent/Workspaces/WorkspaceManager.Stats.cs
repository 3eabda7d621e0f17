using System.Runtime.CompilerServices;
using Microagent.Workspaces.Manager;

namespace Microagent.Workspaces;

/// <summary>Stats of active workspaces: CPU, host and guest memory, drive I/O and network bytes (docs/ARCHITECTURE.md "Stats").</summary>
public sealed partial class WorkspaceManager
{
    private StatsReader Stats => new(_control, _reconciler);

    /// <summary>
    /// One sample of a running or paused workspace taken over <paramref name="interval"/> (default 2 s; CPU % is the average over
    /// it). Any other state: <see cref="WorkspaceStateException"/> (<c>conflict</c>).
    /// </summary>
    public async Task<WorkspaceStats> GetStatsAsync(string name, TimeSpan? interval = null, CancellationToken ct = default)
    {
        var window = StatsReader.Window(interval);
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        return await Stats.SampleAsync(store, window, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A sample every <paramref name="interval"/> (default 2 s), each over the time since the one before, until the workspace is no
    /// longer active or <paramref name="ct"/> is cancelled. Not active at the start: <see cref="WorkspaceStateException"/>.
    /// </summary>
    public async IAsyncEnumerable<WorkspaceStats> FollowStatsAsync(string name, TimeSpan? interval = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var window = StatsReader.Window(interval);
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        await foreach (var s in Stats.FollowAsync(store, window, ct).ConfigureAwait(false)) yield return s;
    }

    /// <summary>One sample of every running or paused workspace over one shared <paramref name="interval"/> (default 2 s), by name (<c>ps</c>).</summary>
    public async Task<IReadOnlyList<WorkspaceStats>> ListStatsAsync(TimeSpan? interval = null, CancellationToken ct = default)
    {
        var window = StatsReader.Window(interval);
        var active = _status.List(ct).Where(s => s.State is WorkspaceState.Running or WorkspaceState.Paused).Select(s => Store(s.Name));
        return await Stats.ListAsync(active, window, ct).ConfigureAwait(false);
    }
}
