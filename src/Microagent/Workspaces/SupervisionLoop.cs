using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Protocol;

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
}

/// <summary>
/// The supervise loop (docs/ARCHITECTURE.md "Supervisor"): waits for a halt/kill request, the workload's end, an idle lease
/// expiry, the owner's death, a dead vsock channel or QEMU's exit, and records the end through <see cref="WorkspaceStore.Settle"/>.
/// Invariant: when <see cref="RunAsync"/> returns normally QEMU is gone and the state is an end state (or the one a concurrent
/// writer recorded first).
/// </summary>
internal sealed class SupervisionLoop(WorkspaceStore store, ISupervisedVm vm, IdleLease lease, ChannelReader<ControlRequest> commands,
    SupervisionOptions options, Action<string> log)
{
    private static readonly TimeSpan ActivityWriteInterval = TimeSpan.FromSeconds(1);
    private DateTimeOffset _lastActivityWritten = DateTimeOffset.MinValue;

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
        while (true)
        {
            var tick = Task.Delay(options.Tick, ct);
            var tasks = new List<Task> { vm.Exited, vm.VsockCompletion, command, tick };
            if (workload is not null) tasks.Add(workload);
            await Task.WhenAny(tasks).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();

            if (vm.VsockCompletion.IsCompleted && !vm.Exited.IsCompleted)
            {
                // QEMU closing its vhost-user session on the way out ends the channel first: give it a moment to exit.
                try { await vm.Exited.WaitAsync(options.ChannelExitGrace, ct).ConfigureAwait(false); }
                catch (TimeoutException) { }
                if (!vm.Exited.IsCompleted)
                {
                    string why = vm.VsockCompletion.Exception?.GetBaseException().Message ?? "the backend stopped";
                    log($"vsock channel lost: {why}");
                    await vm.DisposeAsync().ConfigureAwait(false);
                    Record(WorkspaceState.Failed, WorkloadRunner.Shorten($"the vsock channel to the guest failed: {why}; QEMU (pid {vm.QemuPid}) was killed"));
                    return "failed";
                }
            }
            if (vm.Exited.IsCompleted)
            {
                int code = await vm.Exited.ConfigureAwait(false);
                if (code == 0)
                {
                    Record(WorkspaceState.Stopped, "the guest powered itself off");
                    return "stopped";
                }
                string how = code > 128 ? $"killed by signal {code - 128}" : $"status {code}";
                Record(WorkspaceState.Failed, $"QEMU (pid {vm.QemuPid}) exited unexpectedly ({how}). Serial log tail:\n{WorkspaceVm.Tail(store.SerialLogPath, 5)}");
                return "failed";
            }
            if (command.IsCompleted && commands.TryRead(out var request))
            {
                if (request.Type == ControlVerb.Kill)
                {
                    await KillAsync(OnRequest("killed", request.Reason)).ConfigureAwait(false);
                    return "killed";
                }
                var window = request.TimeoutMs is > 0 ? TimeSpan.FromMilliseconds(request.TimeoutMs.Value) : WorkspaceSupervisor.DefaultHaltWindow;
                await HaltAsync(window, WorkspaceState.Halted, OnRequest("halted", request.Reason)).ConfigureAwait(false);
                return "halted";
            }
            if (command.IsCompleted) command = commands.WaitToReadAsync(ct).AsTask();
            if (workload is { IsCompleted: true })
            {
                var result = await workload.ConfigureAwait(false);
                store.WriteResult(result);
                string detail = result.Status == ExecStatuses.Exited ? $"the workload exited with code {result.ExitCode}" : $"the workload ended: {result.Status}";
                await HaltAsync(options.HaltWindow, WorkspaceState.Stopped, detail).ConfigureAwait(false);
                return "workload done";
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
