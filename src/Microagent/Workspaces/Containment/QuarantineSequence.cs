using Microagent.Errors;
using Microagent.Vmm;

namespace Microagent.Workspaces.Containment;

/// <summary>What the quarantine sequence severs in the supervisor (<see cref="WorkspaceSupervisor"/>); each returns what it did, null when there is nothing of that kind.</summary>
internal interface IQuarantineHost
{
    /// <summary>Aborts every egress connection, stops DNS, closes the published listeners and their connections (synchronously).</summary>
    string SeverNetwork();

    /// <summary>Severs the mediation channel; null when this boot has none.</summary>
    string? SeverMediation();

    /// <summary>Closes the model forward (the guest's way to the model runner); null when this boot has none.</summary>
    string? SeverModel();

    /// <summary>Severs the <c>--vsock</c> proxies; null when this boot has none.</summary>
    string? SeverVsock();
}

/// <summary>
/// The supervisor's part of a quarantine (docs/ARCHITECTURE.md "Quarantine"), run inside the supervise loop (the only writer of
/// QEMU state), one phase at a time, each recorded in <c>containment.json</c> before and after it runs. <see cref="ContainAsync"/>:
/// fence (the record, then the state <c>quarantined</c>), freeze, sever network, mediation, the model forward and vsock proxies. <see cref="FinishAsync"/>:
/// the forensic snapshot (unless not asked for), then the VM stopped. A phase already done is not run again, so a retry completes
/// what is left. Severing runs even when the freeze failed: containment first.
/// </summary>
internal sealed class QuarantineSequence(WorkspaceStore store, ISupervisedVm vm, IdleLease lease, IQuarantineHost host,
    Func<string, CancellationToken, Task<string>>? forensic, Action<string> log)
{
    private static readonly TimeSpan QmpTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The fence is in place on this boot (the loop then refuses pause, resume and snapshot, and never continues the guest).</summary>
    public bool Fenced { get; private set; }

    /// <summary>Fence, freeze, sever. <paramref name="frozen"/>: the vCPUs are already stopped (a user or host pause).</summary>
    public async Task<ControlResponse> ContainAsync(string reason, bool capture, bool frozen, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var existing = store.ReadContainment();
        var record = existing is { Fenced: true } open ? open.WithCapture(capture, now) : ContainmentRecord.Begin(reason, capture, now);
        if (record.NeedsRun(QuarantinePhases.Fence)) record = record.With(QuarantinePhases.Fence, ContainmentPhaseStatus.Done, "containment.json written; state quarantined", now);
        store.Fence(record, WorkspaceState.Quarantined, $"quarantined: {record.Reason}");
        Fenced = true;
        log($"quarantine: fenced ({record.Reason})");

        string? freezeError = null;
        if (record.NeedsRun(QuarantinePhases.Freeze))
        {
            Mark(QuarantinePhases.Freeze, ContainmentPhaseStatus.Running, null);
            try
            {
                if (!frozen)
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    timeout.CancelAfter(QmpTimeout);
                    await vm.StopAsync(timeout.Token).ConfigureAwait(false);
                }
                lease.Pause();
                Mark(QuarantinePhases.Freeze, ContainmentPhaseStatus.Done, frozen ? "already frozen (paused)" : "vCPUs stopped (QMP stop)");
            }
            catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                freezeError = $"the vCPUs could not be frozen: {e.Message}";
                Mark(QuarantinePhases.Freeze, ContainmentPhaseStatus.Failed, freezeError);
            }
        }
        Run(QuarantinePhases.SeverNetwork, host.SeverNetwork, "no network");
        Run(QuarantinePhases.SeverMediation, host.SeverMediation, "no mediation channel on this boot");
        Run(QuarantinePhases.SeverModel, host.SeverModel, "no model forward on this boot");
        Run(QuarantinePhases.SeverVsock, host.SeverVsock, "no --vsock proxies on this boot");
        log("quarantine: network, mediation, model forward and vsock proxies severed");
        return freezeError is null ? new ControlResponse { Ok = true } : new ControlResponse { Ok = false, Error = freezeError };
    }

    /// <summary>
    /// The forensic snapshot while frozen (when the record asks for one), then the VM stopped. A failed capture leaves the guest
    /// frozen and severed and answers the error (the VM is not stopped: a retry, or one with <c>--no-capture</c>, goes on).
    /// True in <c>Stopped</c> when the VM is gone.
    /// </summary>
    public async Task<(ControlResponse Reply, bool Stopped)> FinishAsync(CancellationToken ct)
    {
        var record = store.ReadContainment() ?? throw MicroagentException.Permanent("the containment record is missing");
        if (record.Capture && record.NeedsRun(QuarantinePhases.Capture))
        {
            string tag = "forensic-" + DateTimeOffset.UtcNow.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
            Mark(QuarantinePhases.Capture, ContainmentPhaseStatus.Running, $"tag {tag}");
            try
            {
                if (forensic is null) throw MicroagentException.Unsupported("this VM cannot be captured");
                string done = await forensic(tag, ct).ConfigureAwait(false);
                store.UpdateContainment(r => r!.With(QuarantinePhases.Capture, ContainmentPhaseStatus.Done, done, DateTimeOffset.UtcNow) with { ForensicTag = tag });
            }
            catch (Exception e) when (e is MicroagentException or IOException or UnauthorizedAccessException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                string why = $"the forensic snapshot failed: {e.Message}; the guest stays frozen and severed";
                log($"quarantine: {why}");
                Mark(QuarantinePhases.Capture, ContainmentPhaseStatus.Failed, why);
                return (new ControlResponse { Ok = false, Error = why }, false);
            }
        }
        Mark(QuarantinePhases.Stop, ContainmentPhaseStatus.Running, null);
        await vm.DisposeAsync().ConfigureAwait(false);
        Mark(QuarantinePhases.Stop, ContainmentPhaseStatus.Done, $"QEMU (pid {vm.QemuPid}) stopped; the disk is kept");
        log("quarantine: complete; the VM is stopped");
        return (new ControlResponse { Ok = true }, true);
    }

    /// <summary>QEMU went away by itself while quarantined: the stop phase says so (the state stays quarantined).</summary>
    public void VmGone(string detail)
    {
        try
        {
            store.UpdateContainment(r => r!.NeedsRun(QuarantinePhases.Stop) ? r.With(QuarantinePhases.Stop, ContainmentPhaseStatus.Done, detail, DateTimeOffset.UtcNow) : r);
        }
        catch (Exception e) when (e is MicroagentException or IOException) { log($"cannot record the stop phase: {e.Message}"); }
    }

    private void Run(string phase, Func<string?> sever, string nothing)
    {
        if (!(store.ReadContainment()?.NeedsRun(phase) ?? true)) return;
        Mark(phase, ContainmentPhaseStatus.Running, null);
        try
        {
            string? done = sever();
            Mark(phase, done is null ? ContainmentPhaseStatus.Skipped : ContainmentPhaseStatus.Done, done ?? nothing);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or InvalidOperationException)
        {
            Mark(phase, ContainmentPhaseStatus.Failed, e.Message);
        }
    }

    private void Mark(string phase, ContainmentPhaseStatus status, string? detail) =>
        store.UpdateContainment(r => r!.With(phase, status, detail, DateTimeOffset.UtcNow));
}
