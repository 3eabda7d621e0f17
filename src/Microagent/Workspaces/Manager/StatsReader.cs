using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microagent.Errors;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// Stats of active workspaces (docs/ARCHITECTURE.md "Stats"). The library reads QEMU's and the supervisor's /proc entries
/// itself (<see cref="ProcStats"/>: CPU time twice, a window apart; RSS and PSS) and asks the supervisor, over the control verb
/// <c>stats</c>, for what only it can measure: drive I/O (QMP <c>query-blockstats</c> on the connection it holds), the bytes
/// of its egress broker and published ports, and the guest's memory (agent <c>guest-stats</c>).
/// </summary>
internal sealed class StatsReader(IControlClient control, Reconciler reconciler, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The window of a sample: <paramref name="interval"/> checked against <see cref="WorkspaceLimits.StatsIntervalMs"/>, or the default.</summary>
    public static TimeSpan Window(TimeSpan? interval)
    {
        var w = interval ?? TimeSpan.FromMilliseconds(WorkspaceLimits.DefaultStatsIntervalMs);
        WorkspaceLimits.StatsIntervalMs.Check((long)w.TotalMilliseconds);
        return w;
    }

    /// <summary>One sample of <paramref name="store"/> over <paramref name="window"/>; a workspace that is not running or paused is a <c>conflict</c>.</summary>
    public async Task<WorkspaceStats> SampleAsync(WorkspaceStore store, TimeSpan window, CancellationToken ct)
    {
        var start = Begin(store, throwIfInactive: true)!.Value;
        await Task.Delay(window, ct).ConfigureAwait(false);
        return await EndAsync(store, start, ct).ConfigureAwait(false) ?? throw NotActive(store, reconciler.TryReconcile(store));
    }

    /// <summary>A sample every <paramref name="window"/> (each over the window since the one before) until the workspace is no longer active.</summary>
    public async IAsyncEnumerable<WorkspaceStats> FollowAsync(WorkspaceStore store, TimeSpan window, [EnumeratorCancellation] CancellationToken ct)
    {
        var previous = Begin(store, throwIfInactive: true)!.Value;
        while (true)
        {
            await Task.Delay(window, ct).ConfigureAwait(false);
            if (await SampleOrNullAsync(store, previous, ct).ConfigureAwait(false) is not { } next) yield break;
            yield return next.Stats;
            previous = next.Reading;
        }
    }

    /// <summary>One sample of every active workspace of <paramref name="stores"/> over one shared window, by name; those that stop meanwhile are left out.</summary>
    public async Task<IReadOnlyList<WorkspaceStats>> ListAsync(IEnumerable<WorkspaceStore> stores, TimeSpan window, CancellationToken ct)
    {
        var started = new List<(WorkspaceStore Store, ProcReading Reading)>();
        foreach (var store in stores)
            if (Begin(store, throwIfInactive: false) is { } r) started.Add((store, r));
        if (started.Count == 0) return [];
        await Task.Delay(window, ct).ConfigureAwait(false);
        var samples = await Task.WhenAll(started.Select(s => EndAsync(s.Store, s.Reading, ct))).ConfigureAwait(false);
        return [.. samples.OfType<WorkspaceStats>().OrderBy(s => s.Name, StringComparer.Ordinal)];
    }

    /// <summary>The first reading of an active workspace's QEMU; null (or, with <paramref name="throwIfInactive"/>, a <c>conflict</c>) when it is not running or paused.</summary>
    private ProcReading? Begin(WorkspaceStore store, bool throwIfInactive)
    {
        var state = reconciler.TryReconcile(store);
        if (state.State is WorkspaceState.Running or WorkspaceState.Paused && ProcStats.Read(state.QemuPid, _time) is { } reading) return reading;
        return throwIfInactive ? throw NotActive(store, state) : null;
    }

    private async Task<WorkspaceStats?> EndAsync(WorkspaceStore store, ProcReading start, CancellationToken ct) =>
        (await SampleOrNullAsync(store, start, ct).ConfigureAwait(false))?.Stats;

    /// <summary>The sample from <paramref name="start"/> to now, with the reading it ended on; null when the workspace is no longer active.</summary>
    private async Task<(WorkspaceStats Stats, ProcReading Reading)?> SampleOrNullAsync(WorkspaceStore store, ProcReading start, CancellationToken ct)
    {
        var state = store.ReadState();
        if (state.State is not (WorkspaceState.Running or WorkspaceState.Paused)) return null;
        SupervisorStats? supervisor = null;
        try
        {
            var response = await control.SendAsync(store.ControlSocketPath, ControlRequests.Stats(), ct).ConfigureAwait(false);
            if (response.Ok) supervisor = response.Stats;
        }
        catch (Exception e) when (e is MicroagentException or IOException or SocketException) { }
        if (ProcStats.Read(state.QemuPid, _time) is not { } end) return null;
        var sup = ProcStats.Read(state.SupervisorPid, _time);
        var now = _time.GetUtcNow();
        var disks = supervisor?.Disks ?? [];
        var stats = new WorkspaceStats
        {
            Name = store.Name,
            State = state.State,
            SampledAt = now,
            IntervalMs = (long)_time.GetElapsedTime(start.At, end.At).TotalMilliseconds,
            UptimeSeconds = state.Boot?.ReadyAt is { } ready ? (long)Math.Max(0, (now - ready).TotalSeconds) : null,
            MemoryMiB = state.Boot?.MemoryMiB ?? 0,
            Cpus = state.Boot?.Cpus ?? 0,
            Cpu = new CpuStats(ProcStats.CpuPercent(start.CpuTicks, end.CpuTicks, _time.GetElapsedTime(start.At, end.At), Interop.SystemConfig.ClockTicksPerSecond),
                end.UserTicks / (double)Interop.SystemConfig.ClockTicksPerSecond, end.SystemTicks / (double)Interop.SystemConfig.ClockTicksPerSecond,
                Environment.ProcessorCount),
            HostMemory = new HostMemoryStats(end.RssBytes, end.PssBytes, sup?.RssBytes ?? 0, sup?.PssBytes ?? 0),
            GuestMemory = supervisor?.GuestMemory,
            Disks = disks,
            DiskReadBytes = disks.Sum(d => d.ReadBytes),
            DiskWriteBytes = disks.Sum(d => d.WriteBytes),
            Network = supervisor?.Network,
        };
        return (stats, end);
    }

    private static WorkspaceStateException NotActive(WorkspaceStore store, WorkspaceStateRecord state) =>
        new(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}: stats exist only while it runs (or is paused)",
            state.State == WorkspaceState.Starting ? $"wait for `microagent start {store.Name}` to finish" : $"start it: `microagent start {store.Name}`");
}
