using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class WorkspaceStateSettleTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    [Theory]
    // already there
    [InlineData(WorkspaceState.Stopped, WorkspaceState.Stopped, WorkspaceState.Stopped)]
    [InlineData(WorkspaceState.Running, WorkspaceState.Running, WorkspaceState.Running)]
    // legal transitions
    [InlineData(WorkspaceState.Running, WorkspaceState.Stopping, WorkspaceState.Stopping)]
    [InlineData(WorkspaceState.Stopping, WorkspaceState.Halted, WorkspaceState.Halted)]
    [InlineData(WorkspaceState.Starting, WorkspaceState.Stopped, WorkspaceState.Stopped)]
    [InlineData(WorkspaceState.Starting, WorkspaceState.Failed, WorkspaceState.Failed)]
    [InlineData(WorkspaceState.Running, WorkspaceState.Stopped, WorkspaceState.Stopped)]
    // starting → halted: never ran, so not a graceful halt
    [InlineData(WorkspaceState.Starting, WorkspaceState.Halted, WorkspaceState.Stopped)]
    // active, end state out of reach: failed
    [InlineData(WorkspaceState.Running, WorkspaceState.Halted, WorkspaceState.Failed)]
    [InlineData(WorkspaceState.Paused, WorkspaceState.Halted, WorkspaceState.Failed)]
    // quarantined: only halt, stop or kill release it; nothing fails it
    [InlineData(WorkspaceState.Quarantined, WorkspaceState.Halted, WorkspaceState.Halted)]
    [InlineData(WorkspaceState.Quarantined, WorkspaceState.Failed, WorkspaceState.Quarantined)]
    [InlineData(WorkspaceState.Quarantined, WorkspaceState.Starting, WorkspaceState.Quarantined)]
    // an end state already recorded is kept
    [InlineData(WorkspaceState.Failed, WorkspaceState.Stopped, WorkspaceState.Failed)]
    [InlineData(WorkspaceState.Stopped, WorkspaceState.Failed, WorkspaceState.Stopped)]
    [InlineData(WorkspaceState.Halted, WorkspaceState.Stopping, WorkspaceState.Halted)]
    [InlineData(WorkspaceState.Prepared, WorkspaceState.Failed, WorkspaceState.Prepared)]
    // active, another active state out of reach: unchanged
    [InlineData(WorkspaceState.Stopping, WorkspaceState.Running, WorkspaceState.Stopping)]
    public void Settle_picks_the_legal_state(WorkspaceState from, WorkspaceState wanted, WorkspaceState expected) =>
        Assert.Equal(expected, WorkspaceStateMachine.Settle(from, wanted));

    [Fact]
    public void Settle_only_returns_the_same_state_or_a_legal_target()
    {
        foreach (var from in Enum.GetValues<WorkspaceState>())
            foreach (var wanted in Enum.GetValues<WorkspaceState>())
            {
                var to = WorkspaceStateMachine.Settle(from, wanted);
                Assert.True(to == from || WorkspaceStateMachine.CanTransition(from, to), $"{from} wanting {wanted} settled on {to}");
            }
    }

    [Fact]
    public void Store_settle_applies_the_fallback_appends_one_event_and_is_a_no_op_when_there()
    {
        var store = new WorkspaceStore(new StatePaths(_root), "w");
        StatePaths.EnsureDirectory(store.Dir);
        store.Initialize("created");
        store.Transition(WorkspaceState.Starting, "start", r => r with { SupervisorPid = 42 });
        store.Transition(WorkspaceState.Running, "up");

        var after = store.Settle(WorkspaceState.Halted, "the supervisor vanished");
        Assert.Equal(WorkspaceState.Failed, after.State);
        Assert.Equal(WorkspaceState.Running, after.Previous);
        Assert.Null(after.SupervisorPid);
        Assert.Equal("the supervisor vanished", store.ReadState().Detail);

        var again = store.Settle(WorkspaceState.Failed, "late writer");
        Assert.Equal("the supervisor vanished", again.Detail);
        store.Settle(WorkspaceState.Stopped, "later writer");
        Assert.Equal(WorkspaceState.Failed, store.ReadState().State);

        var events = store.ReadEvents(0, out _);
        Assert.Equal([WorkspaceState.Prepared, WorkspaceState.Starting, WorkspaceState.Running, WorkspaceState.Failed], events.Select(e => e.State));
    }
}
