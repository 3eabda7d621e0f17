using Microagent.Tools;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microagent.Errors;
using Microagent.Mediation;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// What a workspace is, as the verbs report it: the status projection of config + state, the mediation probe, lists,
/// events, logs, results and waits. Reads take no lock: they reconcile only when the lock is free (<see cref="Reconciler.TryReconcile"/>).
/// </summary>
internal sealed class StatusReader(StatePaths paths, IProcessTable processes, IControlClient control, Reconciler reconciler)
{
    private readonly NetworkControl _network = new(control, reconciler);

    private static readonly TimeSpan FollowInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>The status of <paramref name="store"/> as stored now (no reconcile, no probe).</summary>
    public static WorkspaceStatus Project(WorkspaceStore store)
    {
        var config = store.ReadConfig();
        var state = store.ReadState();
        long disk = 0;
        try { disk = new FileInfo(store.DiskPath).Length; } catch (IOException) { }
        return new WorkspaceStatus
        {
            Name = store.Name, State = state.State, Previous = state.Previous, Detail = state.Detail, Since = state.Since,
            GuestReady = state.GuestReady, ExecReady = state.ExecReady && state.State == WorkspaceState.Running,
            SetupCompleted = state.SetupCompleted, Pids = new WorkspacePids(state.SupervisorPid, state.QemuPid),
            Config = config, Boot = state.Boot, DiskUsageBytes = disk, StateDirFreeBytes = HostSpace.FreeBytes(store.Dir), PauseCause = state.PauseCause,
            Kernel = state.Boot?.KernelSha256 is { } k ? new WorkspaceHash(state.Boot.KernelRelease, k) : null,
            Rootfs = new WorkspaceHash(config.BaselinePath, config.ImageDigest),
            LastActivity = state.LastActivity, Directory = store.Dir, Containment = ReadContainmentOrNull(store),
        };
    }

    /// <summary>The containment record; a corrupt one is reported as absent here (quarantine itself refuses to go on over it).</summary>
    private static Containment.ContainmentRecord? ReadContainmentOrNull(WorkspaceStore store)
    {
        try { return store.ReadContainment(); }
        catch (MicroagentException) { return null; }
    }

    /// <summary>The projection plus the mediation channel and, for a running workspace, the supervisor's probe of its target.</summary>
    public async Task<WorkspaceStatus> WithMediationAsync(WorkspaceStore store, CancellationToken ct)
    {
        var status = await _network.WithStateAsync(store, Project(store), ct).ConfigureAwait(false);
        // Running: this boot's channel (start may override it); otherwise the stored one that the next start uses.
        var mediation = status.State.IsActive() && status.Boot is not null ? status.Boot.Mediation : status.Config.Mediation;
        if (mediation is not { Enabled: true }) return status with { Mediation = mediation };
        MediationReadiness ready;
        if (status.State == WorkspaceState.Quarantined)
            ready = MediationReadiness.SeveredByQuarantine(mediation);
        else if (status.State != WorkspaceState.Running)
            ready = MediationReadiness.NotRunning(mediation, status.State.WireName());
        else
        {
            try
            {
                var response = await control.SendAsync(store.ControlSocketPath, ControlRequests.MediationStatus(), ct).ConfigureAwait(false);
                ready = response.Mediation ?? Unready(mediation, "the supervisor reports no channel");
            }
            catch (Exception e) when (e is MicroagentException or IOException or SocketException)
            {
                ready = Unready(mediation, $"the supervisor does not answer ({e.Message})");
            }
        }
        return status with { Mediation = mediation, MediationReady = ready };
    }

    private static MediationReadiness Unready(MediationConfig m, string why) =>
        new(false, $"mediation port {m.Port} -> {m.Target}: {why}", m.Required ? MediationReadiness.UnreachableError : null, m.Port, m.Target, m.Required, m.FailClosed);

    /// <summary>Severs the mediation channel of an active workspace (see <see cref="WorkspaceManager.SeverMediationAsync"/>).</summary>
    public async Task<MediationReadiness> SeverMediationAsync(WorkspaceStore store, CancellationToken ct)
    {
        var state = reconciler.Reconcile(store);
        if (!state.State.IsActive())
            throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}: there is no channel to sever", "start it first");
        if (state.Boot?.Mediation is not { Enabled: true })
            throw new WorkspaceSpecException($"workspace '{store.Name}' has no mediation channel on this boot", "create or start it with a mediation channel (PORT=HOST:PORT)")
            { Field = "mediation" };
        var response = await control.SendAsync(store.ControlSocketPath, ControlRequests.SeverMediation(), ct).ConfigureAwait(false);
        if (!response.Ok || response.Mediation is null)
            throw MicroagentException.Transient($"the supervisor did not sever the mediation channel: {response.Error ?? "no answer"}");
        return response.Mediation;
    }

    /// <summary>The config of a running workspace; otherwise a <c>conflict</c> naming its state (reconciled first).</summary>
    public WorkspaceConfig EnsureRunning(WorkspaceStore store)
    {
        var config = ReadConfigOrThrow(store);
        var state = store.ReadState();
        if (state.State == WorkspaceState.Running && processes.IsAlive(state.SupervisorPid, state.SupervisorStartTime)) return config;
        state = reconciler.TryReconcile(store);
        if (state.State == WorkspaceState.Running) return config;
        if (state.State == WorkspaceState.Paused && PauseCauses.IsHost(state.PauseCause))
            throw new WorkspaceHostFaultException(store.Name, $"workspace '{store.Name}' is paused: {state.Detail}",
                $"free space on the filesystem of {store.Dir} (now {(HostSpace.FreeBytes(store.Dir) is { } f ? ByteSize.Format(f) : "unknown")} free); " +
                $"the supervisor resumes the guest by itself once {ByteSize.Format(HostSpace.ResumeFreeBytes)} are free. `microagent status {store.Name}` shows it");
        throw new WorkspaceStateException(store.Name, state.State,
            $"workspace '{store.Name}' is {state.State.WireName()}{(state.Detail is { } d ? $" ({d})" : "")}",
            state.State switch
            {
                WorkspaceState.Starting => $"wait for `microagent start {store.Name}` to finish",
                WorkspaceState.Paused => $"resume it: `microagent resume {store.Name}`",
                _ => $"start it: `microagent start {store.Name}`",
            });
    }

    /// <summary>Longest wait, after a guest call failed because QEMU is gone, for the supervisor to record why.</summary>
    private static readonly TimeSpan EndRecordWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After a failed guest call: a <c>conflict</c> naming the recorded end (a panic, a crash) when the workspace stopped under
    /// it; returns when it is still running. QEMU already gone but the state still <c>running</c> means the supervisor is
    /// recording the end right now: that record is waited for (bounded), so the error says what happened.
    /// </summary>
    public async Task ThrowIfNoLongerRunningAsync(WorkspaceStore store, MicroagentException cause, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (store.ReadState() is { State: WorkspaceState.Running, QemuPid: { } qemu } && !processes.IsAlive(qemu) && clock.Elapsed < EndRecordWait)
            await Task.Delay(FollowInterval, ct).ConfigureAwait(false);
        var state = reconciler.TryReconcile(store);
        if (state.State != WorkspaceState.Running)
            throw new WorkspaceStateException(store.Name, state.State,
                $"workspace '{store.Name}' stopped during the command: {state.State.WireName()}{(state.Detail is { } d ? $" ({d})" : "")}",
                $"see `microagent logs {store.Name}`; original error: {cause.Message}");
    }

    /// <summary>Every workspace, by name.</summary>
    public IReadOnlyList<WorkspaceStatus> List(CancellationToken ct)
    {
        var list = new List<WorkspaceStatus>();
        if (!Directory.Exists(paths.Workspaces)) return list;
        foreach (string dir in Directory.EnumerateDirectories(paths.Workspaces).Order(StringComparer.Ordinal))
        {
            ct.ThrowIfCancellationRequested();
            WorkspaceStore store;
            try { store = new WorkspaceStore(paths, Path.GetFileName(dir)); }
            catch (WorkspaceSpecException) { continue; }
            if (!store.Exists) continue;
            try
            {
                reconciler.TryReconcile(store);
                list.Add(Project(store));
            }
            catch (WorkspaceNotFoundException) { } // deleted meanwhile
        }
        return list;
    }

    /// <summary>Lifecycle events, oldest first; with <paramref name="follow"/>, new ones until a terminal state.</summary>
    public async IAsyncEnumerable<WorkspaceEvent> ReadEventsAsync(WorkspaceStore store, bool follow, [EnumeratorCancellation] CancellationToken ct)
    {
        ReadConfigOrThrow(store);
        long offset = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var batch = store.ReadEvents(offset, out offset);
            foreach (var e in batch) yield return e;
            if (!follow) yield break;
            if (batch.Count == 0 && !File.Exists(store.StatePath)) yield break;
            if (batch.Count == 0 && reconciler.TryReconcile(store).State.IsTerminal()) yield break;
            await Task.Delay(FollowInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Copies the serial console log; with <paramref name="follow"/>, until a terminal state.</summary>
    public async Task ReadLogAsync(WorkspaceStore store, Stream output, bool follow, CancellationToken ct)
    {
        ReadConfigOrThrow(store);
        long offset = 0;
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int copied = 0;
            if (File.Exists(store.SerialLogPath))
            {
                await using var fs = new FileStream(store.SerialLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (fs.Length < offset) offset = 0; // a new boot truncated it
                fs.Seek(offset, SeekOrigin.Begin);
                int n;
                while ((n = await fs.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    offset += n;
                    copied += n;
                }
                await output.FlushAsync(ct).ConfigureAwait(false);
            }
            if (!follow) return;
            if (copied == 0 && (!File.Exists(store.StatePath) || reconciler.TryReconcile(store).State.IsTerminal())) return;
            await Task.Delay(FollowInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The workload's result of the last start.</summary>
    public WorkloadResult GetResult(WorkspaceStore store)
    {
        var config = ReadConfigOrThrow(store);
        if (store.ReadResult() is { } result) return result;
        if (config.Exec is null)
            throw MicroagentException.NotFound($"workspace '{store.Name}' has no workload", "create it with a workload (a shell command run on every start) to get a structured result");
        var state = reconciler.TryReconcile(store);
        throw state.State.IsActive()
            ? new WorkspaceStateException(store.Name, state.State, $"the workload of '{store.Name}' is still running", $"`microagent wait {store.Name}` first")
            : MicroagentException.NotFound($"workspace '{store.Name}' has no workload result yet ({state.State.WireName()})", $"`microagent start {store.Name}` runs it");
    }

    /// <summary>Waits for a terminal state; <see cref="WorkspaceTimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task<WorkspaceStatus> WaitAsync(WorkspaceStore store, TimeSpan? timeout, CancellationToken ct)
    {
        ReadConfigOrThrow(store);
        var clock = Stopwatch.StartNew();
        while (!reconciler.TryReconcile(store).State.IsTerminal())
        {
            if (timeout is { } t && clock.Elapsed > t)
                throw new WorkspaceTimeoutException($"workspace '{store.Name}' is still {store.ReadState().State.WireName()} after {t.TotalSeconds:0.#} s",
                    "wait longer, or halt it");
            await Task.Delay(FollowInterval, ct).ConfigureAwait(false);
        }
        return Project(store);
    }

    /// <summary>The stored config; <see cref="WorkspaceNotFoundException"/> when the workspace does not exist.</summary>
    public static WorkspaceConfig ReadConfigOrThrow(WorkspaceStore store)
    {
        if (!store.Exists) throw new WorkspaceNotFoundException(store.Name);
        return store.ReadConfig();
    }
}
