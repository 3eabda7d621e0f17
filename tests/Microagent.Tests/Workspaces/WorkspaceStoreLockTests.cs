using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>state.json read-modify-write under the state lock: concurrent writers (threads here; flock is per open file, so processes alike) lose nothing.</summary>
public sealed class WorkspaceStoreLockTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    private WorkspaceStore NewStore()
    {
        var store = new WorkspaceStore(new StatePaths(_root), "w");
        StatePaths.EnsureDirectory(store.Dir);
        store.Initialize("created");
        return store;
    }

    [Fact]
    public async Task Concurrent_updates_from_two_writers_lose_nothing()
    {
        var first = NewStore();
        var second = new WorkspaceStore(new StatePaths(_root), "w"); // another writer's own store, as another process has
        const int each = 150;
        using var go = new ManualResetEventSlim();
        Task Writer(WorkspaceStore store) => Task.Factory.StartNew(() =>
        {
            go.Wait();
            for (int i = 0; i < each; i++) store.Update(r => r with { SupervisorStartTime = (r.SupervisorStartTime ?? 0) + 1 });
        }, TaskCreationOptions.LongRunning);
        var a = Writer(first);
        var b = Writer(second);
        go.Set();
        await Task.WhenAll(a, b);
        Assert.Equal(2 * each, first.ReadState().SupervisorStartTime);
    }

    [Fact]
    public async Task A_transition_and_concurrent_updates_both_survive()
    {
        var store = NewStore();
        using var go = new ManualResetEventSlim();
        var updates = Task.Factory.StartNew(() =>
        {
            go.Wait();
            for (int i = 0; i < 100; i++) store.Update(r => r with { SupervisorStartTime = (r.SupervisorStartTime ?? 0) + 1 });
        }, TaskCreationOptions.LongRunning);
        var transitions = Task.Factory.StartNew(() =>
        {
            go.Wait();
            new WorkspaceStore(new StatePaths(_root), "w").Transition(WorkspaceState.Starting, "start", r => r with { SetupCompleted = true });
        }, TaskCreationOptions.LongRunning);
        go.Set();
        await Task.WhenAll(updates, transitions);
        var state = store.ReadState();
        Assert.Equal(WorkspaceState.Starting, state.State);
        Assert.True(state.SetupCompleted);
        Assert.Equal(100, state.SupervisorStartTime);
    }

    [Fact]
    public void A_deleted_workspace_is_not_found_and_not_recreated()
    {
        var store = NewStore();
        Directory.Delete(store.Dir, true);
        Assert.Throws<WorkspaceNotFoundException>(() => store.Update(r => r));
        Assert.Throws<WorkspaceNotFoundException>(() => store.Settle(WorkspaceState.Failed, "gone"));
        Assert.False(Directory.Exists(store.Dir));
    }

    [Fact]
    public void The_layout_names_every_file_of_the_directory()
    {
        var store = NewStore();
        Assert.Equal(Path.Combine(store.Dir, "state.json"), store.StatePath);
        Assert.Equal(Path.Combine(store.Dir, "control.sock"), store.ControlSocketPath);
        Assert.Equal(Path.Combine(store.Dir, "vsock.sock_5000"), store.Layout.GuestListener(5000));
        File.WriteAllText(store.Layout.GuestListener(7), "");
        Assert.Contains(store.Layout.GuestListener(7), store.RuntimeFiles());
        Assert.DoesNotContain(store.Layout.StateLock, store.RuntimeFiles());
        File.WriteAllText(store.DiskPath, "");
        Assert.Equal([store.DiskPath], WorkspaceLayout.AllDisks(store.Paths));
    }
}
