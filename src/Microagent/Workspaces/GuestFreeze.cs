using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>A control request queued for the supervise loop; <see cref="Reply"/> completes with its answer (pause, resume) or is unused (halt, kill).</summary>
internal sealed record SupervisorCommand(ControlRequest Request)
{
    /// <summary>The loop's answer to a pause or resume.</summary>
    public TaskCompletionSource<ControlResponse> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// A user's pause and resume of a running guest (docs/ARCHITECTURE.md "Pause and resume"): QMP <c>stop</c> freezes the vCPUs
/// in place, the idle lease stops running down and the state becomes <c>paused</c> with cause <see cref="PauseCauses.User"/>
/// and the user's reason; resume is <c>cont</c>, the guest wall clock set from the host (it lags by the paused time), the lease
/// running again with the idle budget it had, and <c>running</c>. Only the supervise loop calls it (one at a time), so it needs
/// no lock. A pause by the host (disk full) is not this type's: the loop keeps that one and refuses a user pause over it.
/// </summary>
internal sealed class GuestFreeze(WorkspaceStore store, ISupervisedVm vm, IdleLease lease, Action<string> log)
{
    private static readonly TimeSpan QmpTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The user paused the guest and has not resumed it.</summary>
    public bool IsPaused { get; private set; }

    /// <summary>Freezes the vCPUs and records <c>paused</c> with <paramref name="reason"/>; already paused by the user: nothing to do.</summary>
    public async Task<ControlResponse> PauseAsync(string? reason, CancellationToken ct)
    {
        if (IsPaused) return new ControlResponse { Ok = true };
        using (var timeout = Timeout(ct)) await vm.StopAsync(timeout.Token).ConfigureAwait(false);
        IsPaused = true;
        lease.Pause();
        string detail = string.IsNullOrWhiteSpace(reason) ? "paused on request" : $"paused on request: {reason}";
        log(detail);
        store.Transition(WorkspaceState.Paused, detail, r => r with { PauseCause = PauseCauses.User });
        return new ControlResponse { Ok = true };
    }

    /// <summary>Thaws the vCPUs, sets the guest clock and records <c>running</c>; not paused by the user: nothing to do.</summary>
    public async Task<ControlResponse> ResumeAsync(CancellationToken ct)
    {
        if (!IsPaused) return new ControlResponse { Ok = true };
        using (var timeout = Timeout(ct)) await vm.ContinueAsync(timeout.Token).ConfigureAwait(false);
        IsPaused = false;
        lease.Resume();
        string clock = await SetClockAsync(ct).ConfigureAwait(false);
        log($"resumed on request; {clock}");
        store.Transition(WorkspaceState.Running, $"resumed on request; {clock}");
        return new ControlResponse { Ok = true };
    }

    /// <summary>Sets the guest's wall clock from the host's; says how it went (a failure is reported, not fatal: the guest runs).</summary>
    public async Task<string> SetClockAsync(CancellationToken ct)
    {
        try
        {
            using var timeout = Timeout(ct);
            var sync = await vm.SetGuestClockAsync(DateTimeOffset.UtcNow, timeout.Token).ConfigureAwait(false);
            return sync.Describe();
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            log($"cannot set the guest clock: {e.Message}");
            return $"the guest clock could not be set ({e.Message})";
        }
    }

    private static CancellationTokenSource Timeout(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(QmpTimeout);
        return cts;
    }
}
