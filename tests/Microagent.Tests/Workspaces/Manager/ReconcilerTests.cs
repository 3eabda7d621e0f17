using Microagent.Tools;
using Microagent.Workspaces;
using Microagent.Workspaces.Manager;

namespace Microagent.Tests.Workspaces.Manager;

/// <summary>Reconcile and gc over a real state dir, with pretend supervisors and QEMU processes.</summary>
public sealed class ReconcilerTests : IDisposable
{
    private readonly TempState _state = new();
    private readonly FakeProcessTable _processes = new();

    public void Dispose() => _state.Dispose();

    private Reconciler Reconciler() => new(_state.Paths, _processes);

    [Fact]
    public void Dead_supervisor_of_a_running_workspace_becomes_failed_and_its_sockets_go()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        File.WriteAllText(store.ControlSocketPath, "");
        File.WriteAllText(store.HybridSocketPath + "_2048", "");

        var after = Reconciler().Reconcile(store);

        Assert.Equal(WorkspaceState.Failed, after.State);
        Assert.Equal("the supervisor (pid 500) died unexpectedly; its VM is gone", after.Detail);
        Assert.Null(after.SupervisorPid);
        Assert.False(File.Exists(store.ControlSocketPath));
        Assert.False(File.Exists(store.HybridSocketPath + "_2048"));
        Assert.Equal(WorkspaceState.Failed, store.ReadEvents(0, out _)[^1].State);
    }

    [Fact]
    public void Dead_supervisor_while_stopping_becomes_stopped()
    {
        var store = _state.InState("w", WorkspaceState.Stopping, supervisor: 500);
        var after = Reconciler().Reconcile(store);
        Assert.Equal(WorkspaceState.Stopped, after.State);
        Assert.EndsWith("while stopping", after.Detail);
    }

    [Fact]
    public void Stray_qemu_of_a_dead_supervisor_is_killed_and_others_are_not()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500, qemu: 600);
        var other = _state.Prepared("other");
        _processes.AddQemu(600, store);
        _processes.AddQemu(601, other);
        _processes.Add(602, "qemu-system-x86_64 -drive file=/somewhere/else/root.qcow2");

        var after = Reconciler().Reconcile(store);

        Assert.Equal([600], _processes.Killed);
        Assert.Contains("its QEMU was killed", after.Detail);
    }

    [Fact]
    public void Live_supervisor_is_untouched()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500, qemu: 600);
        _processes.Add(500);
        _processes.AddQemu(600, store);
        File.WriteAllText(store.ControlSocketPath, "");
        byte[] before = File.ReadAllBytes(store.StatePath);

        var after = Reconciler().Reconcile(store);

        Assert.Equal(WorkspaceState.Running, after.State);
        Assert.Equal(before, File.ReadAllBytes(store.StatePath));
        Assert.Empty(_processes.Killed);
        Assert.True(File.Exists(store.ControlSocketPath));
    }

    [Fact]
    public void Supervisor_pid_reused_by_another_process_counts_as_dead()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        _processes.Add(500, "some other program", start: 999_999);
        Assert.Equal(WorkspaceState.Failed, Reconciler().Reconcile(store).State);
    }

    [Fact]
    public void Try_reconcile_leaves_a_workspace_whose_lock_is_held()
    {
        var store = _state.InState("w", WorkspaceState.Running, supervisor: 500);
        using (var held = FileLock.TryAcquire(store.LockPath))
        {
            Assert.NotNull(held);
            Assert.Equal(WorkspaceState.Running, Reconciler().TryReconcile(store).State);
        }
        Assert.Equal(WorkspaceState.Failed, Reconciler().TryReconcile(store).State);
    }

    [Fact]
    public void Gc_reaps_stale_runs_ephemeral_leftovers_and_stray_qemu_and_keeps_the_rest()
    {
        // A one-shot run killed before it wrote its config, untouched for an hour; and one just begun.
        string stale = Path.Combine(_state.Paths.Workspaces, "run-deadbeef0000");
        string fresh = Path.Combine(_state.Paths.Workspaces, "run-0123456789ab");
        foreach (string d in new[] { stale, fresh }) StatePaths.EnsureDirectory(d);
        File.WriteAllText(Path.Combine(stale, "serial.log"), "x");
        Directory.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-1));
        // An ephemeral run whose owner died (stopped, boot says ephemeral) and a kept run.
        var ephemeral = _state.InState("run-aaaaaaaaaaaa", WorkspaceState.Stopped, supervisor: null);
        ephemeral.WriteBoot(new BootRecord { Ephemeral = true });
        var kept = _state.InState("run-bbbbbbbbbbbb", WorkspaceState.Halted, supervisor: null);
        kept.WriteBoot(new BootRecord { Ephemeral = false });
        // A running workspace whose supervisor died, with its QEMU and a stale socket.
        var orphan = _state.InState("orphan", WorkspaceState.Running, supervisor: 500, qemu: 600);
        _processes.AddQemu(600, orphan);
        File.WriteAllText(orphan.ControlSocketPath, "");
        // A live workspace and its QEMU.
        var live = _state.InState("live", WorkspaceState.Running, supervisor: 501, qemu: 601);
        _processes.Add(501);
        _processes.AddQemu(601, live);
        // QEMU under the state dir for a workspace that does not exist.
        _processes.Add(602, $"qemu-system-x86_64 -drive file={_state.Paths.Workspaces}/ghost/root.qcow2");

        var report = Reconciler().Gc(CancellationToken.None);

        Assert.Equal(["orphan"], report.Reconciled);
        Assert.Equal(["run-aaaaaaaaaaaa", "run-deadbeef0000"], report.RemovedRuns.Order());
        Assert.Equal([602], report.KilledQemu); // the orphan's own QEMU went with its reconcile
        Assert.Equal([600, 602], _processes.Killed.Order());
        Assert.Contains(orphan.ControlSocketPath, report.RemovedSockets);
        Assert.False(Directory.Exists(stale));
        Assert.False(Directory.Exists(ephemeral.Dir));
        Assert.True(Directory.Exists(fresh));
        Assert.True(kept.Exists);
        Assert.Equal(WorkspaceState.Failed, orphan.ReadState().State);
        Assert.Equal(WorkspaceState.Running, live.ReadState().State);
        Assert.DoesNotContain(601, _processes.Killed);
    }

    [Fact]
    public void Gc_skips_a_workspace_another_command_holds()
    {
        var store = _state.InState("busy", WorkspaceState.Running, supervisor: 500, qemu: 600);
        _processes.AddQemu(600, store);
        using var held = FileLock.TryAcquire(store.LockPath);

        var report = Reconciler().Gc(CancellationToken.None);

        Assert.Empty(report.Reconciled);
        Assert.Empty(_processes.Killed); // its QEMU may be one a start has not recorded yet
        Assert.Equal(WorkspaceState.Running, store.ReadState().State);
    }

    [Fact]
    public async Task Gc_through_the_manager_completes_synchronously()
    {
        _state.InState("orphan", WorkspaceState.Running, supervisor: 500);
        var manager = _state.Manager(_processes, new FakeSpawner(_processes, 1), new FakeControlClient());
        var task = manager.GcAsync();
        Assert.True(task.IsCompletedSuccessfully);
        Assert.Equal(["orphan"], (await task).Reconciled);
    }
}
