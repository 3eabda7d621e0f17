using Microagent.Agent;
using Microagent.Tools;
using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Protocol;
using Microagent.Vmm;

namespace Microagent.Workspaces;

/// <summary>What the supervise loop needs of a booted VM (<see cref="WorkspaceVm"/>; a fake in unit tests). Disposing kills QEMU and closes the backend (idempotent).</summary>
internal interface ISupervisedVm : IAsyncDisposable
{
    /// <summary>QEMU's process id.</summary>
    int QemuPid { get; }

    /// <summary>Completes with QEMU's exit code.</summary>
    Task<int> Exited { get; }

    /// <summary>
    /// The vsock backend's completion: faults when the vhost-user session or the device fails; completes when the backend is
    /// disposed. Either, while the VM runs, means the host ↔ guest channel is dead.
    /// </summary>
    Task VsockCompletion { get; }

    /// <summary>vsock connections opened so far (either direction).</summary>
    long ConnectionsOpened { get; }

    /// <summary>vsock connections open now.</summary>
    int ActiveConnections { get; }

    /// <summary>QEMU's QMP events, in order; completes when QEMU is gone (docs/ARCHITECTURE.md "Faults").</summary>
    ChannelReader<QmpEvent> Events { get; }

    /// <summary>QEMU's run state (<c>query-status</c>: <see cref="RunStates"/>).</summary>
    Task<string?> QueryStatusAsync(CancellationToken ct);

    /// <summary>Resumes a VM that QEMU stopped (<c>cont</c>).</summary>
    Task ContinueAsync(CancellationToken ct);

    /// <summary>Freezes the vCPUs in place (<c>stop</c>).</summary>
    Task StopAsync(CancellationToken ct);

    /// <summary>Sets the guest's wall clock to <paramref name="now"/> (through the agent).</summary>
    Task<GuestClockSync> SetGuestClockAsync(DateTimeOffset now, CancellationToken ct);

    /// <summary>
    /// Asks the guest to power off and waits up to <paramref name="window"/>; if it has not, asks QEMU to quit (QMP), then
    /// kills it. True when the guest powered off within the window. QEMU is gone on return.
    /// </summary>
    Task<bool> ShutdownAsync(TimeSpan window, CancellationToken ct = default);
}

/// <summary>Why and how a supervised boot ends; the parts the loop reads.</summary>
internal sealed record SupervisionOptions
{
    /// <summary>Owner process whose death kills the VM; null = none.</summary>
    public int? OwnerPid { get; init; }

    /// <summary>How long the guest may take to power off when the loop halts it (workload end, idle lease).</summary>
    public TimeSpan HaltWindow { get; init; } = WorkspaceSupervisor.DefaultHaltWindow;

    /// <summary>How often the lease and the owner are looked at.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>After the vsock channel ends, how long QEMU may take to exit by itself (then it is an orderly exit, not a channel fault).</summary>
    public TimeSpan ChannelExitGrace { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Captures a snapshot (tag, the user paused the guest, where QMP events read meanwhile go); null: this VM cannot
    /// (docs/ARCHITECTURE.md "Snapshots"). A <see cref="Snapshots.SnapshotRecoveryException"/> means the VM is no longer usable.
    /// </summary>
    public Func<string, bool, Action<QmpEvent>, CancellationToken, Task<Snapshots.SnapshotInfo>>? Capture { get; init; }

    /// <summary>What a quarantine severs in the supervisor (docs/ARCHITECTURE.md "Quarantine"); null: nothing (unit tests).</summary>
    public Containment.IQuarantineHost? QuarantineHost { get; init; }

    /// <summary>Takes a forensic snapshot of the frozen VM with the given tag and says what it holds; null: this VM cannot.</summary>
    public Func<string, CancellationToken, Task<string>>? Forensic { get; init; }

    /// <summary>Free bytes on the filesystem of the workspace directory (<see cref="HostSpace.FreeBytes"/>; a fake in unit tests).</summary>
    public Func<string, long?> FreeBytes { get; init; } = HostSpace.FreeBytes;
}

/// <summary>
/// The supervise loop (docs/ARCHITECTURE.md "Supervisor"): waits for a halt/kill request, the workload's end, an idle lease
/// expiry, the owner's death, a dead vsock channel or QEMU's exit, and records the end through <see cref="WorkspaceStore.Settle"/>.
/// Invariant: when <see cref="RunAsync"/> returns normally QEMU is gone and the state is an end state (or the one a concurrent
/// writer recorded first).
/// </summary>
internal sealed partial class SupervisionLoop(WorkspaceStore store, ISupervisedVm vm, IdleLease lease, ChannelReader<SupervisorCommand> commands,
    SupervisionOptions options, Action<string> log)
{
    private readonly GuestFreeze _freeze = new(store, vm, lease, log);
    private readonly Containment.QuarantineSequence _quarantine = new(store, vm, lease, options.QuarantineHost ?? NothingToSever.Instance, options.Forensic, log);
    private static readonly TimeSpan ActivityWriteInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan QmpTimeout = TimeSpan.FromSeconds(5);
    private DateTimeOffset _lastActivityWritten = DateTimeOffset.MinValue;
    private readonly VmObservations _seen = new();
    private bool _hostPaused;

    /// <summary>Runs until the VM is gone; returns a short word for the log (stopped, failed, killed, halted, reaped, ...).</summary>
    public async Task<string> RunAsync(Task<WorkloadResult>? workload, CancellationToken ct)
    {
        long? ownerStart = options.OwnerPid is { } op ? ProcessTable.StartTime(op) : null;
        if (options.OwnerPid is not null && ownerStart is null)
        {
            await KillAsync("its owner process is gone").ConfigureAwait(false);
            return "owner gone";
        }
        Task<bool> command = commands.WaitToReadAsync(ct).AsTask();
        Task<bool> events = vm.Events.WaitToReadAsync(ct).AsTask();
        if (!HostSpace.TakeReserve(store.Layout.Reserve)) log("no room for the space reserve: a full disk may go unrecorded");
        while (true)
        {
            var tick = Task.Delay(options.Tick, ct);
            var tasks = new List<Task> { vm.Exited, vm.VsockCompletion, command, tick };
            if (!events.IsCompleted) tasks.Add(events);
            if (workload is not null) tasks.Add(workload);
            await Task.WhenAny(tasks).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            if (events.IsCompleted && !vm.Exited.IsCompleted)
            {
                await HandleEventsAsync(ct).ConfigureAwait(false);
                if (!vm.Events.Completion.IsCompleted) events = vm.Events.WaitToReadAsync(ct).AsTask();
            }

            if (vm.VsockCompletion.IsCompleted && !vm.Exited.IsCompleted)
            {
                // QEMU closing its vhost-user session on the way out ends the channel first: give it a moment to exit.
                try { await vm.Exited.WaitAsync(options.ChannelExitGrace, ct).ConfigureAwait(false); }
                catch (TimeoutException) { }
                if (!vm.Exited.IsCompleted)
                {
                    string why = vm.VsockCompletion.Exception?.GetBaseException().Message ?? "the backend stopped";
                    log($"vsock channel lost: {why}");
                    if (_quarantine.Fenced) return await QuarantinedEndAsync($"the vsock channel failed ({why}); QEMU was killed").ConfigureAwait(false);
                    await vm.DisposeAsync().ConfigureAwait(false);
                    Record(WorkspaceState.Failed, WorkloadRunner.Shorten($"the vsock channel to the guest failed: {why}; QEMU (pid {vm.QemuPid}) was killed"));
                    return "failed";
                }
            }
            if (vm.Exited.IsCompleted)
            {
                int code = await vm.Exited.ConfigureAwait(false);
                await DrainEventsAsync().ConfigureAwait(false);
                var (state, detail) = GuestFaults.Exit(_seen, code, vm.QemuPid, SerialLines(store.SerialLogPath));
                log($"QEMU exited with status {code}: {detail.Split('\n')[0]}");
                if (_quarantine.Fenced) return await QuarantinedEndAsync($"QEMU exited by itself: {WorkloadRunner.Shorten(detail)}").ConfigureAwait(false);
                Record(state, WorkloadRunner.Shorten(detail));
                return state == WorkspaceState.Stopped ? "stopped" : "failed";
            }
            if (command.IsCompleted && commands.TryRead(out var queued))
            {
                var request = queued.Request;
                if (request.Type == ControlVerb.Quarantine)
                {
                    if (await QuarantineAsync(queued, ct).ConfigureAwait(false)) return "quarantined";
                    command = commands.WaitToReadAsync(ct).AsTask();
                    continue;
                }
                if (_quarantine.Fenced && request.Type is ControlVerb.Pause or ControlVerb.Resume or ControlVerb.Snapshot)
                {
                    queued.Reply.TrySetResult(new ControlResponse { Ok = false, Error = "the workspace is quarantined: halt, stop or kill it first" });
                    command = commands.WaitToReadAsync(ct).AsTask();
                    continue;
                }
                if (_quarantine.Fenced) // halt or kill: the guest is never thawed; the library records the release once this process is gone
                    return await QuarantinedEndAsync($"QEMU stopped by {ControlVerbJsonConverter.WireName(request.Type)}").ConfigureAwait(false);
                if (request.Type is ControlVerb.Pause or ControlVerb.Resume)
                {
                    queued.Reply.TrySetResult(await FreezeAsync(request, ct).ConfigureAwait(false));
                    command = commands.WaitToReadAsync(ct).AsTask();
                    continue;
                }
                if (request.Type == ControlVerb.Snapshot)
                {
                    var (reply, fatal) = await SnapshotAsync(request.Tag ?? "", ct).ConfigureAwait(false);
                    queued.Reply.TrySetResult(reply);
                    if (fatal is not null)
                    {
                        await vm.DisposeAsync().ConfigureAwait(false);
                        Record(WorkspaceState.Failed, WorkloadRunner.Shorten(fatal));
                        return "failed";
                    }
                    command = commands.WaitToReadAsync(ct).AsTask();
                    continue;
                }
                if (request.Type == ControlVerb.Kill)
                {
                    await KillAsync(OnRequest("killed", request.Reason)).ConfigureAwait(false);
                    return "killed";
                }
                if (_hostPaused)
                {
                    // A guest frozen by the host cannot power off: stop QEMU and say so (writes the host refused are not on the disk).
                    await KillAsync("halt requested while the host had paused the guest: a frozen guest cannot power off, so QEMU was stopped; " +
                        "writes the host disk refused were not kept").ConfigureAwait(false);
                    return "killed";
                }
                var window = request.TimeoutMs is > 0 ? TimeSpan.FromMilliseconds(request.TimeoutMs.Value) : WorkspaceSupervisor.DefaultHaltWindow;
                if (_freeze.IsPaused) await FreezeAsync(new ControlRequest { Type = ControlVerb.Resume }, ct).ConfigureAwait(false); // a frozen guest cannot power off
                await HaltAsync(window, WorkspaceState.Halted, OnRequest("halted", request.Reason)).ConfigureAwait(false);
                return "halted";
            }
            if (command.IsCompleted) command = commands.WaitToReadAsync(ct).AsTask();
            if (_quarantine.Fenced)
            {
                // Frozen and severed: no workload end, lease, owner or host-pause handling; only a control verb or QEMU's end moves it.
                if (options.OwnerPid is { } o && !ProcessTable.IsAlive(o, ownerStart)) return await QuarantinedEndAsync($"its owner process {o} is gone").ConfigureAwait(false);
                continue;
            }
            if (workload is { IsCompleted: true })
            {
                var result = await workload.ConfigureAwait(false);
                store.WriteResult(result);
                string detail = result.Status == ExecStatuses.Exited ? $"the workload exited with code {result.ExitCode}" : $"the workload ended: {result.Status}";
                await HaltAsync(options.HaltWindow, WorkspaceState.Stopped, detail).ConfigureAwait(false);
                return "workload done";
            }
            if (_hostPaused)
            {
                // A disk error reported while the VM was already running again (a request retried by the last cont) brings no
                // STOP, so no RESUME follows the next cont either: QEMU's own run state says whether the guest runs.
                if (await TryResumeAsync(ct).ConfigureAwait(false) && _hostPaused && await QueryStatusAsync(ct).ConfigureAwait(false) == RunStates.Running)
                    await HostResumedAsync(ct).ConfigureAwait(false);
                continue; // a frozen guest neither uses nor loses its lease; its owner is watched again once it runs
            }
            lease.Observe(vm.ConnectionsOpened, vm.ActiveConnections);
            RecordActivity();
            if (lease.Expired)
            {
                await HaltAsync(options.HaltWindow, WorkspaceState.Halted, $"reaped: no exec/cp/connect activity for {lease.Ttl.TotalSeconds:0} s (ttl)").ConfigureAwait(false);
                return "reaped";
            }
            if (options.OwnerPid is { } owner && !ProcessTable.IsAlive(owner, ownerStart))
            {
                await KillAsync($"its owner process {owner} is gone").ConfigureAwait(false);
                return "owner gone";
            }
        }
    }

    /// <summary>Folds every queued QMP event in and acts on the ones that change the state (docs/ARCHITECTURE.md "Faults").</summary>
    private async Task HandleEventsAsync(CancellationToken ct)
    {
        while (vm.Events.TryRead(out var e))
        {
            _seen.Observe(e);
            switch (e.Name)
            {
                case QmpEventNames.BlockIoError:
                    log($"QEMU: {e.Name} {e.Data?.ToJsonString()}");
                    if (e.Action == "stop") PauseForHost(e);
                    break;
                case QmpEventNames.Stop:
                    log("QEMU: STOP");
                    if (!_hostPaused && await QueryStatusAsync(ct).ConfigureAwait(false) == RunStates.IoError) PauseForHost(_seen.StoppingIoError);
                    break;
                case QmpEventNames.Resume:
                    log("QEMU: RESUME");
                    if (_hostPaused) await HostResumedAsync(ct).ConfigureAwait(false);
                    break;
                case QmpEventNames.GuestPanicked or QmpEventNames.Shutdown or QmpEventNames.Reset:
                    log($"QEMU: {e.Name} {e.Data?.ToJsonString()}");
                    break;
            }
        }
    }

    /// <summary>QEMU runs the guest again after a host pause: set its clock and record <c>running</c>.</summary>
    private async Task HostResumedAsync(CancellationToken ct)
    {
        _hostPaused = false;
        string clock = await _freeze.SetClockAsync(ct).ConfigureAwait(false);
        long? free = options.FreeBytes(store.Dir);
        TryTransition(WorkspaceState.Running, $"resumed: the host disk has {(free is { } f ? ByteSize.Format(f) : "space")} free again; {clock}");
    }

    /// <summary>
    /// A user's pause or resume. Over a host pause: pause is refused (the host's reason stands); resume continues the guest at
    /// once when the disk has room again (as the loop would by itself) and is refused while it has not.
    /// </summary>
    private async Task<ControlResponse> FreezeAsync(ControlRequest request, CancellationToken ct)
    {
        try
        {
            if (request.Type == ControlVerb.Pause)
                return _hostPaused
                    ? new ControlResponse { Ok = false, Error = "the host has paused the guest (its disk is full); it resumes by itself once space is freed" }
                    : await _freeze.PauseAsync(request.Reason, ct).ConfigureAwait(false);
            if (!_hostPaused) return await _freeze.ResumeAsync(ct).ConfigureAwait(false);
            if (!await TryResumeAsync(ct).ConfigureAwait(false))
                return new ControlResponse { Ok = false, Error = $"the host disk is still too full to continue the guest (it needs {ByteSize.Format(HostSpace.ResumeFreeBytes + HostSpace.ReserveBytes)} free)" };
            await HostResumedAsync(ct).ConfigureAwait(false);
            return new ControlResponse { Ok = true };
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            log($"{ControlVerbJsonConverter.WireName(request.Type)} failed: {e.Message}");
            return new ControlResponse { Ok = false, Error = $"{ControlVerbJsonConverter.WireName(request.Type)} failed: {e.Message}" };
        }
    }

    /// <summary>
    /// A snapshot capture (docs/ARCHITECTURE.md "Snapshots"); the guest's clock is set after it ran again. Returns the answer and,
    /// when the VM could not be put back, why it must be failed. QEMU dying meanwhile is left to the loop (its exit is recorded).
    /// </summary>
    private async Task<(ControlResponse Reply, string? Fatal)> SnapshotAsync(string tag, CancellationToken ct)
    {
        if (_hostPaused) return (new ControlResponse { Ok = false, Error = "the host has paused the guest (its disk is full); free space first" }, null);
        if (options.Capture is not { } capture) return (new ControlResponse { Ok = false, Error = "this VM cannot be snapshotted" }, null);
        try
        {
            var info = await capture(tag, _freeze.IsPaused, e => { _seen.Observe(e); log($"QEMU: {e.Name}"); }, ct).ConfigureAwait(false);
            if (!_freeze.IsPaused) log(await _freeze.SetClockAsync(ct).ConfigureAwait(false));
            lease.Touch();
            return (new ControlResponse { Ok = true, Tag = info.Manifest.Tag }, null);
        }
        catch (Snapshots.SnapshotRecoveryException e)
        {
            log(e.Message);
            return (new ControlResponse { Ok = false, Error = e.Message }, e.Message);
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            log($"snapshot '{tag}' failed: {e.Message}");
            return (new ControlResponse { Ok = false, Error = $"snapshot failed: {e.Message}" }, null);
        }
    }

    /// <summary>QEMU stopped the VM on a disk error: free the reserve so the record can be written, record <c>paused</c> with the reason.</summary>
    private void PauseForHost(QmpEvent? error)
    {
        if (_hostPaused) return;
        _hostPaused = true;
        HostSpace.ReleaseReserve(store.Layout.Reserve);
        string cause = error is null || error.NoSpace ? PauseCauses.HostDiskFull : PauseCauses.HostIoError;
        string detail = GuestFaults.IoErrorDetail(error, options.FreeBytes(store.Dir), store.Dir);
        log($"paused by the host: {detail}");
        try { store.Transition(WorkspaceState.Paused, detail, r => r with { PauseCause = cause }); }
        catch (Exception e) when (e is MicroagentException or IOException) { log($"cannot record state paused: {e.Message}"); }
    }

    /// <summary>While the host has paused the guest: once enough space is free, take the reserve back and continue the guest. True when <c>cont</c> was accepted.</summary>
    private async Task<bool> TryResumeAsync(CancellationToken ct)
    {
        if (options.FreeBytes(store.Dir) is not { } free || free < HostSpace.ResumeFreeBytes + HostSpace.ReserveBytes) return false;
        if (!HostSpace.TakeReserve(store.Layout.Reserve)) return false;
        log($"the host disk has {ByteSize.Format(free)} free: continuing the guest");
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(QmpTimeout);
            await vm.ContinueAsync(timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            log($"cont failed: {e.Message}");
            return false;
        }
    }

    private async Task<string?> QueryStatusAsync(CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(QmpTimeout);
            return await vm.QueryStatusAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested) { return null; }
    }

    /// <summary>After QEMU exited: the events it sent before its QMP socket closed (bounded wait).</summary>
    private async Task DrainEventsAsync()
    {
        try { await vm.Events.Completion.WaitAsync(options.ChannelExitGrace).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or IOException or ChannelClosedException) { }
        while (vm.Events.TryRead(out var e))
        {
            _seen.Observe(e);
            log($"QEMU: {e.Name} {e.Data?.ToJsonString()}");
        }
    }

    /// <summary>The last 256 KiB of the serial log, as lines (the panic, if any, is near the end).</summary>
    internal static IReadOnlyList<string> SerialLines(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long start = Math.Max(0, fs.Length - (256 << 10));
            fs.Seek(start, SeekOrigin.Begin);
            using var reader = new StreamReader(fs);
            var lines = reader.ReadToEnd().Split('\n').ToList();
            if (start > 0 && lines.Count > 0) lines.RemoveAt(0); // a partial first line
            return lines;
        }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    private void TryTransition(WorkspaceState to, string detail)
    {
        try { store.Transition(to, detail); }
        catch (Exception e) when (e is MicroagentException or IOException) { log($"cannot record state {to.WireName()}: {e.Message}"); }
    }

    /// <summary>Writes the lease's last activity to <c>state.json</c> at most once per <see cref="ActivityWriteInterval"/>.</summary>
    private void RecordActivity()
    {
        var last = lease.LastActivity;
        if (last - _lastActivityWritten <= ActivityWriteInterval) return;
        _lastActivityWritten = last;
        try { store.Update(r => r with { LastActivity = last }); } catch (Exception e) when (e is IOException or MicroagentException) { }
    }

    private static string OnRequest(string what, string? reason) => reason is { Length: > 0 } ? $"{what} on request: {reason}" : $"{what} on request";

    private void Record(WorkspaceState wanted, string detail) => TrySettle(store, wanted, detail, log);

    /// <summary><see cref="WorkspaceStore.Settle"/>, logging instead of throwing: the VM is already gone or going either way.</summary>
    public static void TrySettle(WorkspaceStore store, WorkspaceState wanted, string detail, Action<string> log)
    {
        try { store.Settle(wanted, detail); }
        catch (Exception e) when (e is MicroagentException or IOException)
        {
            log($"cannot record state {wanted.WireName()}: {e.Message}");
        }
    }

    private async Task HaltAsync(TimeSpan window, WorkspaceState final, string detail)
    {
        Record(WorkspaceState.Stopping, detail);
        log($"halting ({detail}); window {window.TotalSeconds:0} s");
        bool clean = await vm.ShutdownAsync(window).ConfigureAwait(false);
        await vm.DisposeAsync().ConfigureAwait(false);
        if (clean) Record(final, detail);
        else Record(WorkspaceState.Failed, $"the guest did not power off within {window.TotalSeconds:0} s; QEMU was killed");
    }

    private async Task KillAsync(string detail)
    {
        log($"killing the VM: {detail}");
        await vm.DisposeAsync().ConfigureAwait(false);
        Record(WorkspaceState.Stopped, detail);
    }
}
