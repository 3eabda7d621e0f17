using System.Net.Sockets;
using Microagent.Errors;
using Microagent.Workspaces.Containment;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// The library's side of a quarantine (docs/ARCHITECTURE.md "Quarantine"); the caller holds the workspace lock. The supervisor
/// runs the phases that touch the VM (control verb <c>quarantine</c>, stage <c>contain</c>: fence, freeze, sever network,
/// mediation and vsock proxies; stage <c>finish</c>: forensic snapshot, stop); between the two this class severs the console
/// (<see cref="ConsoleControl.SeverAsync"/>). Every phase lands in <c>containment.json</c> as it happens, so a caller killed
/// half-way leaves a truthful record and a retry runs only what is left. With the supervisor dead (crashed, or already gone),
/// what is left is recorded here: nothing runs to freeze, sever or capture, and the VM is stopped.
/// Rules: quarantine needs running, paused or quarantined (else <c>conflict</c>); the reason is required; only halt, stop and
/// kill release a quarantine (<see cref="ReleaseAsync"/>).
/// </summary>
internal sealed class QuarantineControl(IControlClient control, Reconciler reconciler, ConsoleControl console, IProcessTable processes)
{
    /// <summary>Longest reason kept (it becomes the state's detail).</summary>
    public const int MaxReasonLength = 200;

    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(30);

    /// <summary>What <see cref="RunAsync"/> would do now, checked by the same rules; nothing is done.</summary>
    public QuarantineResult Plan(WorkspaceStore store, string reason, bool capture)
    {
        CheckReason(reason);
        var state = reconciler.TryReconcile(store);
        EnsureCanQuarantine(store, state);
        var now = DateTimeOffset.UtcNow;
        var record = store.ReadContainment() is { Fenced: true } open ? open.WithCapture(capture, now) : ContainmentRecord.Begin(reason, capture, now);
        return new QuarantineResult(store.Name, state.State, record, true, Actions(record));
    }

    /// <summary>Runs (or completes) the quarantine; returns the record. A phase that failed is an error once the rest ran (the record says which).</summary>
    public async Task<QuarantineResult> RunAsync(WorkspaceStore store, string reason, bool capture, CancellationToken ct)
    {
        CheckReason(reason);
        var state = reconciler.Reconcile(store);
        EnsureCanQuarantine(store, state);
        if (state.State == WorkspaceState.Quarantined && store.ReadContainment() is { IsComplete: true }) return Result(store);
        if (state.State == WorkspaceState.Quarantined && !processes.IsAlive(state.SupervisorPid, state.SupervisorStartTime))
        {
            CompleteWithoutVm(store, capture);
            return Result(store);
        }
        try
        {
            await SendAsync(store, QuarantineStages.Contain, reason, capture, ct).ConfigureAwait(false);
            await SeverConsoleAsync(store, ct).ConfigureAwait(false);
            await SendAsync(store, QuarantineStages.Finish, reason, capture, ct).ConfigureAwait(false);
        }
        catch (MicroagentException) when (store.ReadContainment() is { IsComplete: true })
        {
            // An earlier, interrupted call's finish completed meanwhile (the supervisor answers queued requests "exiting").
        }
        if (state.SupervisorPid is { } pid) await processes.WaitForExitAsync(pid, state.SupervisorStartTime, ExitWait, ct).ConfigureAwait(false);
        return Result(store);
    }

    /// <summary>
    /// halt, stop or kill of a quarantined workspace: the supervisor (if it still runs) stops QEMU without thawing the guest and
    /// exits; then the release is recorded here (the record keeps its phases as history) and the state becomes halted or stopped.
    /// </summary>
    public async Task ReleaseAsync(WorkspaceStore store, WorkspaceStateRecord state, bool kill, string? reason, CancellationToken ct)
    {
        int? pid = state.SupervisorPid;
        long? start = state.SupervisorStartTime;
        if (processes.IsAlive(pid, start))
        {
            try { await control.SendAsync(store.ControlSocketPath, kill ? ControlRequests.Kill(TimeSpan.Zero) : ControlRequests.Halt(TimeSpan.Zero), ct).ConfigureAwait(false); }
            catch (Exception e) when (e is MicroagentException or IOException or SocketException) { }
            if (!await processes.WaitForExitAsync(pid!.Value, start, ExitWait, ct).ConfigureAwait(false)) processes.Kill(pid.Value);
        }
        reconciler.KillStrayQemu(store);
        Reconciler.DeleteRuntimeFiles(store);
        string verb = kill ? "kill" : "halt";
        var to = kill ? WorkspaceState.Stopped : WorkspaceState.Halted;
        if (store.ReadContainment() is not null)
            store.UpdateContainment(r => r! with { Released = new ContainmentRelease(DateTimeOffset.UtcNow, verb, to) });
        if (store.ReadState().State == WorkspaceState.Quarantined)
            store.Transition(to, $"released from quarantine by {verb}{(reason is { Length: > 0 } ? $": {reason}" : "")}; the next start boots from the preserved disk");
    }

    /// <summary>The reason is required: one line of at most <see cref="MaxReasonLength"/> characters.</summary>
    public static void CheckReason(string? reason)
    {
        if (string.IsNullOrWhiteSpace(reason) || reason.Length > MaxReasonLength || reason.Any(char.IsControl))
            throw new WorkspaceSpecException($"a quarantine needs a reason: one line of 1-{MaxReasonLength} characters", "say why, e.g. --reason \"exfiltration attempt\"")
            { Field = "reason" };
    }

    private static void EnsureCanQuarantine(WorkspaceStore store, WorkspaceStateRecord state)
    {
        if (state.State is WorkspaceState.Running or WorkspaceState.Paused or WorkspaceState.Quarantined) return;
        throw new WorkspaceStateException(store.Name, state.State,
            $"workspace '{store.Name}' is {state.State.WireName()}: only a running or paused workspace can be quarantined",
            state.State.IsActive() ? $"wait for it (`microagent status {store.Name}`), or kill it: `microagent kill {store.Name}`"
                : "nothing runs: its network, mediation and console are closed already; inspect its disk or delete it");
    }

    private async Task SendAsync(WorkspaceStore store, string stage, string reason, bool capture, CancellationToken ct)
    {
        var response = await control.SendAsync(store.ControlSocketPath,
            new ControlRequest { Type = ControlVerb.Quarantine, Stage = stage, Reason = reason, Capture = capture }, ct).ConfigureAwait(false);
        if (response.Ok) return;
        bool captureFailed = store.ReadContainment()?.Phase(QuarantinePhases.Capture).Status == ContainmentPhaseStatus.Failed;
        throw MicroagentException.Permanent($"the quarantine of workspace '{store.Name}' did not complete: {response.Error ?? "no reason given"}",
            captureFailed
                ? $"the guest stays frozen and severed; retry `microagent quarantine {store.Name} --reason TEXT`, or finish without the snapshot: add --no-capture"
                : $"`microagent status {store.Name} --json` shows each phase (containment); retry `microagent quarantine {store.Name} --reason TEXT`");
    }

    private async Task SeverConsoleAsync(WorkspaceStore store, CancellationToken ct)
    {
        if (!(store.ReadContainment()?.NeedsRun(QuarantinePhases.SeverConsole) ?? false)) return;
        Mark(store, QuarantinePhases.SeverConsole, ContainmentPhaseStatus.Running, null);
        try
        {
            await console.SeverAsync(store, ct).ConfigureAwait(false);
            Mark(store, QuarantinePhases.SeverConsole, ContainmentPhaseStatus.Done, "console sessions closed; console input refused");
        }
        catch (Exception e) when (e is MicroagentException or IOException or SocketException)
        {
            Mark(store, QuarantinePhases.SeverConsole, ContainmentPhaseStatus.Failed, e.Message);
            throw MicroagentException.Permanent($"the quarantine of workspace '{store.Name}' could not sever the console: {e.Message}",
                $"the guest is frozen and its network severed; retry `microagent quarantine {store.Name} --reason TEXT`");
        }
    }

    /// <summary>The supervisor is gone (its QEMU too): nothing is left to freeze, sever or capture; the VM is stopped.</summary>
    private static void CompleteWithoutVm(WorkspaceStore store, bool capture)
    {
        const string gone = "not needed: the VM and its supervisor are gone";
        store.UpdateContainment(r =>
        {
            var now = DateTimeOffset.UtcNow;
            var record = (r ?? ContainmentRecord.Begin("", capture, now)).WithCapture(capture, now);
            foreach (string p in QuarantinePhases.Ordered.Where(record.NeedsRun))
                record = p switch
                {
                    QuarantinePhases.Capture => record.With(p, ContainmentPhaseStatus.Skipped, "not possible: the VM's memory went with it (the disk is kept)", now),
                    QuarantinePhases.Stop => record.With(p, ContainmentPhaseStatus.Done, "the VM is gone", now),
                    _ => record.With(p, ContainmentPhaseStatus.Skipped, gone, now),
                };
            return record;
        });
    }

    private static void Mark(WorkspaceStore store, string phase, ContainmentPhaseStatus status, string? detail) =>
        store.UpdateContainment(r => r!.With(phase, status, detail, DateTimeOffset.UtcNow));

    private static QuarantineResult Result(WorkspaceStore store)
    {
        var record = store.ReadContainment() ?? throw MicroagentException.Permanent($"workspace '{store.Name}' has no containment record");
        return new QuarantineResult(store.Name, store.ReadState().State, record, false, Actions(record));
    }

    /// <summary>One line per phase still to run: its name and what it does.</summary>
    private static List<string> Actions(ContainmentRecord record) =>
        [.. record.Phases.Where(p => record.NeedsRun(p.Name)).Select(p => $"{p.Name}: {QuarantinePhases.Describe(p.Name)}")];
}
