using Microagent.Tests.Workspaces.Manager;
using Microagent.Workspaces;
using Microagent.Workspaces.Containment;
using Microagent.Workspaces.Manager;

namespace Microagent.Tests.Workspaces.Containment;

/// <summary>The containment record's rules (docs/ARCHITECTURE.md "Quarantine") and how reconcile and release honour it, over a real state dir.</summary>
public sealed class ContainmentRecordTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);
    private readonly TempState _state = new();
    private readonly FakeProcessTable _processes = new();

    public void Dispose() => _state.Dispose();

    [Fact]
    public void A_new_record_lists_every_phase_in_order_pending_and_no_capture_skips_the_snapshot()
    {
        var r = ContainmentRecord.Begin("why", capture: true, T0);
        Assert.Equal(QuarantinePhases.Ordered, r.Phases.Select(p => p.Name));
        Assert.All(r.Phases, p => Assert.Equal(ContainmentPhaseStatus.Pending, p.Status));
        Assert.False(r.Fenced);
        var n = ContainmentRecord.Begin("why", capture: false, T0);
        Assert.Equal(ContainmentPhaseStatus.Skipped, n.Phase(QuarantinePhases.Capture).Status);
    }

    [Fact]
    public void The_record_is_complete_once_every_phase_is_done_or_skipped_and_fenced_until_released()
    {
        var r = ContainmentRecord.Begin("why", capture: false, T0);
        foreach (string p in QuarantinePhases.Ordered.Where(r.NeedsRun)) r = r.With(p, ContainmentPhaseStatus.Done, null, T0.AddSeconds(1));
        Assert.True(r.IsComplete);
        Assert.Equal(T0.AddSeconds(1), r.CompletedAt);
        Assert.True(r.Fenced);
        Assert.False((r with { Released = new ContainmentRelease(T0, "kill", WorkspaceState.Stopped) }).Fenced);
    }

    [Fact]
    public void A_retry_changes_the_capture_choice_only_while_the_snapshot_is_not_taken()
    {
        var r = ContainmentRecord.Begin("why", capture: true, T0).With(QuarantinePhases.Capture, ContainmentPhaseStatus.Failed, "disk full", T0);
        var skipped = r.WithCapture(false, T0);
        Assert.Equal(ContainmentPhaseStatus.Skipped, skipped.Phase(QuarantinePhases.Capture).Status);
        Assert.Equal(ContainmentPhaseStatus.Pending, skipped.WithCapture(true, T0).Phase(QuarantinePhases.Capture).Status);
        var taken = r.With(QuarantinePhases.Capture, ContainmentPhaseStatus.Done, "ok", T0);
        Assert.Equal(ContainmentPhaseStatus.Done, taken.WithCapture(false, T0).Phase(QuarantinePhases.Capture).Status);
    }

    [Fact]
    public void Interrupt_marks_only_running_phases()
    {
        var r = ContainmentRecord.Begin("why", true, T0)
            .With(QuarantinePhases.Fence, ContainmentPhaseStatus.Done, null, T0)
            .With(QuarantinePhases.Freeze, ContainmentPhaseStatus.Running, null, T0)
            .Interrupt("the supervisor died", T0);
        Assert.Equal(ContainmentPhaseStatus.Done, r.Phase(QuarantinePhases.Fence).Status);
        Assert.Equal(ContainmentPhaseStatus.Interrupted, r.Phase(QuarantinePhases.Freeze).Status);
        Assert.Equal(ContainmentPhaseStatus.Pending, r.Phase(QuarantinePhases.SeverNetwork).Status);
        Assert.True(r.NeedsRun(QuarantinePhases.Freeze));
    }

    [Fact]
    public void The_fence_is_written_before_the_state_and_survives_a_reread()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        var record = ContainmentRecord.Begin("why", true, T0).With(QuarantinePhases.Fence, ContainmentPhaseStatus.Done, null, T0);
        var after = store.Fence(record, WorkspaceState.Quarantined, "quarantined: why");
        Assert.Equal(WorkspaceState.Quarantined, after.State);
        Assert.Equal(500, after.SupervisorPid); // the supervisor still runs the sequence
        Assert.True(store.ReadContainment()!.Fenced);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(store.Dir, "containment.json")));
    }

    [Fact]
    public void A_supervisor_that_died_after_the_fence_but_before_the_state_leaves_the_workspace_quarantined_not_failed()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        store.UpdateContainment(_ => ContainmentRecord.Begin("why", true, T0)
            .With(QuarantinePhases.Fence, ContainmentPhaseStatus.Done, null, T0)
            .With(QuarantinePhases.Freeze, ContainmentPhaseStatus.Running, null, T0));

        var after = new Reconciler(_state.Paths, _processes).Reconcile(store);

        Assert.Equal(WorkspaceState.Quarantined, after.State);
        Assert.Null(after.SupervisorPid);
        Assert.Equal(ContainmentPhaseStatus.Interrupted, store.ReadContainment()!.Phase(QuarantinePhases.Freeze).Status);
        Assert.Equal(WorkspaceState.Quarantined, new Reconciler(_state.Paths, _processes).Reconcile(store).State); // and stays so
    }

    [Fact]
    public void Without_a_fence_a_dead_supervisor_still_fails_the_workspace()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        store.UpdateContainment(_ => ContainmentRecord.Begin("old", true, T0) with { Released = new ContainmentRelease(T0, "kill", WorkspaceState.Stopped) });
        Assert.Equal(WorkspaceState.Failed, new Reconciler(_state.Paths, _processes).Reconcile(store).State);
    }

    [Fact]
    public async Task Start_is_refused_and_kill_releases_a_quarantined_workspace_whose_supervisor_is_gone()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        store.Fence(ContainmentRecord.Begin("why", false, T0).With(QuarantinePhases.Fence, ContainmentPhaseStatus.Done, null, T0),
            WorkspaceState.Quarantined, "quarantined: why");
        var manager = _state.Manager(_processes, new FakeSpawner(_processes, 600), new FakeControlClient());

        var refused = await Assert.ThrowsAsync<WorkspaceStateException>(() => manager.StartAsync("w"));
        Assert.Equal(Microagent.Errors.ErrorKind.Conflict, refused.Kind);
        Assert.Contains("kill", refused.Remediation);

        // A retry with the supervisor gone completes the record without a VM.
        var done = await manager.QuarantineAsync("w", "why", capture: true);
        Assert.True(done.Record.IsComplete);
        Assert.Equal(ContainmentPhaseStatus.Skipped, done.Record.Phase(QuarantinePhases.Capture).Status);

        var killed = await manager.KillAsync("w", "seen enough");
        Assert.Equal(WorkspaceState.Stopped, killed.State);
        Assert.Equal("kill", killed.Containment!.Released!.By);
        Assert.Contains("released from quarantine by kill", killed.Detail);
    }

    [Fact]
    public async Task Quarantine_needs_a_reason_and_a_running_workspace_and_preview_does_nothing()
    {
        _state.Prepared("p");
        var store = _state.InState("r", WorkspaceState.Running, supervisor: 500);
        _processes.Add(500);
        var control = new FakeControlClient();
        var manager = _state.Manager(_processes, new FakeSpawner(_processes, 600), control);

        Assert.Equal("reason", (await Assert.ThrowsAsync<WorkspaceSpecException>(() => manager.QuarantineAsync("r", " "))).Field);
        Assert.Equal(Microagent.Errors.ErrorKind.Conflict, (await Assert.ThrowsAsync<WorkspaceStateException>(() => manager.QuarantineAsync("p", "why"))).Kind);
        var plan = manager.PlanQuarantine("r", "why", capture: false);
        Assert.True(plan.Preview);
        Assert.Equal(QuarantinePhases.Ordered.Where(p => p != QuarantinePhases.Capture), plan.Actions.Select(a => a.Split(':')[0]));
        Assert.Empty(control.Requests);
        Assert.Null(store.ReadContainment());
    }
}
