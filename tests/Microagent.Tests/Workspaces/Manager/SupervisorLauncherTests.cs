using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces.Manager;

/// <summary>Start and stop through the manager with a pretend supervisor: the real store, lock and state machine, no VM.</summary>
public sealed class SupervisorLauncherTests : IDisposable
{
    private const int Pid = 4242;
    private readonly TempState _state = new();
    private readonly FakeProcessTable _processes = new();
    private readonly FakeControlClient _control = new();

    public void Dispose() => _state.Dispose();

    /// <summary>What a real supervisor writes first: its own pid and start time.</summary>
    private static void RecordsItself(WorkspaceStore store, int pid) =>
        store.Update(r => r with { SupervisorPid = pid, SupervisorStartTime = 1000 });

    [Fact]
    public async Task Ready_event_returns_running_and_the_supervisors_record_is_left_as_it_wrote_it()
    {
        _state.Prepared("w");
        byte[]? written = null;
        var spawner = new FakeSpawner(_processes, Pid, (store, pid) =>
        {
            // This supervisor records no pid at all: the launcher must not fill it in (it waits on the spawned pid).
            store.Update(r => r with { GuestReady = true, QemuPid = 7 });
            store.Transition(WorkspaceState.Running, "the guest agent serves exec", r => r with { ExecReady = true });
            written = File.ReadAllBytes(store.StatePath);
        });
        var status = await _state.Manager(_processes, spawner, _control).StartAsync("w");

        Assert.Equal(WorkspaceState.Running, status.State);
        Assert.True(status.ExecReady);
        var store = new WorkspaceStore(_state.Paths, "w");
        Assert.Equal(written, File.ReadAllBytes(store.StatePath));
        Assert.Null(store.ReadState().SupervisorPid);
        Assert.Equal(256, store.ReadBoot().MemoryMiB);
        Assert.Empty(_processes.Killed);
    }

    [Fact]
    public async Task Progress_reports_the_phases_it_sees()
    {
        var store = _state.Prepared("w", setup: ["echo one", "echo two"]);
        var spawner = new FakeSpawner(_processes, Pid, (s, pid) =>
        {
            RecordsItself(s, pid);
            s.Update(r => r with { GuestReady = true, Boot = r.Boot! with { BootMs = 1234 } });
        });
        // The pretend supervisor finishes setup once the launcher has said that setup runs.
        var progress = new RecordingProgress(m =>
        {
            if (m.StartsWith("running setup", StringComparison.Ordinal))
                store.Transition(WorkspaceState.Running, "the guest agent serves exec", r => r with { SetupCompleted = true, ExecReady = true });
        });
        await _state.Manager(_processes, spawner, _control).StartAsync("w", new StartOptions { Progress = progress });

        Assert.Equal(["spawning the supervisor", "booting the VM", "guest ready in 1234 ms", "running setup (2 commands)", "the guest serves exec"], progress.Messages);
    }

    [Fact]
    public async Task Supervisor_that_records_a_failure_and_exits_fails_the_start_with_its_reason()
    {
        _state.Prepared("w");
        var spawner = new FakeSpawner(_processes, Pid, (store, pid) =>
        {
            RecordsItself(store, pid);
            store.Transition(WorkspaceState.Failed, "the kernel image does not match its recorded sha256");
            _processes.Exit(pid);
        });
        var e = await Assert.ThrowsAsync<WorkspaceFailedException>(() => _state.Manager(_processes, spawner, _control).StartAsync("w"));

        Assert.Contains("did not start: the kernel image does not match", e.Message);
        Assert.Equal(ErrorKind.Permanent, e.Kind);
        Assert.Equal(WorkspaceState.Failed, new WorkspaceStore(_state.Paths, "w").ReadState().State);
    }

    [Fact]
    public async Task Supervisor_that_dies_before_ready_is_detected_by_its_spawned_pid_and_its_qemu_killed()
    {
        var store = _state.Prepared("w");
        var spawner = new FakeSpawner(_processes, Pid, (s, pid) =>
        {
            _processes.AddQemu(77, s);
            _processes.Exit(pid); // died before it recorded anything
        });
        var e = await Assert.ThrowsAsync<WorkspaceFailedException>(() => _state.Manager(_processes, spawner, _control).StartAsync("w"));

        Assert.Contains($"the supervisor (pid {Pid}) died unexpectedly; its QEMU was killed", e.Message);
        Assert.Contains("supervisor log tail", e.Remediation);
        Assert.Equal([77], _processes.Killed);
        var state = store.ReadState();
        Assert.Equal(WorkspaceState.Failed, state.State);
        Assert.Contains("died unexpectedly", state.Detail);
    }

    [Fact]
    public async Task Timeout_kills_the_supervisor_and_its_qemu_and_fails()
    {
        var store = _state.Prepared("w");
        var spawner = new FakeSpawner(_processes, Pid, (s, pid) =>
        {
            RecordsItself(s, pid);
            _processes.AddQemu(78, s);
        });
        var manager = _state.Manager(_processes, spawner, _control, startTimeout: TimeSpan.Zero);
        var e = await Assert.ThrowsAsync<WorkspaceFailedException>(() => manager.StartAsync("w"));

        Assert.Contains("did not become ready in time", e.Message);
        Assert.Equal([Pid, 78], _processes.Killed);
        var state = store.ReadState();
        Assert.Equal(WorkspaceState.Failed, state.State);
        Assert.Contains("did not become ready within", state.Detail);
    }

    [Fact]
    public async Task Cancelled_start_kills_what_it_began_keeps_the_disk_and_says_so()
    {
        var store = _state.Prepared("w");
        using var cts = new CancellationTokenSource();
        var spawner = new FakeSpawner(_processes, Pid, (s, pid) =>
        {
            RecordsItself(s, pid);
            cts.Cancel();
        });
        var e = await Assert.ThrowsAsync<WorkspaceInterruptedException>(() => _state.Manager(_processes, spawner, _control).StartAsync("w", ct: cts.Token));

        Assert.IsAssignableFrom<OperationCanceledException>(e);
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(WorkspaceState.Stopped, e.State);
        Assert.Contains("the workspace and its disk are kept", e.Message);
        Assert.Equal([Pid], _processes.Killed);
        Assert.Equal(WorkspaceState.Stopped, store.ReadState().State);
        Assert.True(File.Exists(store.DiskPath));
        Assert.True(File.Exists(store.ConfigPath));
    }

    [Fact]
    public async Task Supervisor_that_cannot_be_spawned_fails_the_workspace()
    {
        var store = _state.Prepared("w");
        var spawner = new FakeSpawner(_processes, Pid) { Failure = new IOException("no such file") };
        var e = await Assert.ThrowsAsync<MicroagentException>(() => _state.Manager(_processes, spawner, _control).StartAsync("w"));

        Assert.Equal(ErrorKind.Permanent, e.Kind);
        Assert.Contains("cannot start the supervisor", e.Message);
        Assert.Equal(WorkspaceState.Failed, store.ReadState().State);
    }

    [Fact]
    public async Task Start_rejects_out_of_range_overrides_before_spawning()
    {
        _state.Prepared("w");
        var spawner = new FakeSpawner(_processes, Pid);
        var e = await Assert.ThrowsAsync<WorkspaceSpecException>(() => _state.Manager(_processes, spawner, _control).StartAsync("w", new StartOptions { Cpus = 65 }));

        Assert.Equal("cpus", e.Field);
        Assert.Equal(0, spawner.Spawned);
    }

    [Fact]
    public async Task Halt_that_the_supervisor_completes_is_left_to_it()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid);
        _processes.Add(Pid);
        _control.Answer = request =>
        {
            // As the supervisor: power off, record it, exit.
            store.Transition(WorkspaceState.Stopping, "halt requested");
            store.Transition(WorkspaceState.Halted, "the guest powered off");
            _processes.Exit(Pid);
            return new ControlResponse { Ok = true };
        };
        var status = await _state.Manager(_processes, new FakeSpawner(_processes, Pid), _control).HaltAsync("w", TimeSpan.FromSeconds(3));

        Assert.Equal(WorkspaceState.Halted, status.State);
        var request = Assert.Single(_control.Requests);
        Assert.Equal(ControlVerb.Halt, request.Type);
        Assert.Equal(3000, request.TimeoutMs);
        Assert.Empty(_processes.Killed);
    }

    [Fact]
    public async Task Kill_of_a_supervisor_that_does_not_answer_falls_back_to_signals()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid, qemu: 79);
        _processes.Add(Pid);
        _processes.AddQemu(79, store);
        File.WriteAllText(store.ControlSocketPath, "");
        var status = await _state.Manager(_processes, new FakeSpawner(_processes, Pid), _control).KillAsync("w");

        Assert.Equal(WorkspaceState.Stopped, status.State);
        Assert.Contains("did not respond and was killed", status.Detail);
        Assert.Equal([Pid, 79], _processes.Killed);
        Assert.False(File.Exists(store.ControlSocketPath));
        Assert.Equal(ControlVerb.Kill, Assert.Single(_control.Requests).Type);
    }

    [Fact]
    public async Task Halt_that_the_supervisor_accepts_but_never_finishes_is_killed_and_failed()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid);
        _processes.Add(Pid);
        _control.Answer = _ => new ControlResponse { Ok = true };
        var status = await _state.Manager(_processes, new FakeSpawner(_processes, Pid), _control).HaltAsync("w");

        Assert.Equal(WorkspaceState.Failed, status.State);
        Assert.Contains("did not complete the halt", status.Detail);
        Assert.Equal([Pid], _processes.Killed);
    }

    [Fact]
    public async Task Delete_of_a_running_workspace_is_a_conflict_whose_hint_gives_the_commands()
    {
        _state.InState("w", WorkspaceState.Running, Pid);
        _processes.Add(Pid);
        var e = await Assert.ThrowsAsync<WorkspaceStateException>(() =>
            _state.Manager(_processes, new FakeSpawner(_processes, Pid), _control).DeleteAsync("w"));

        Assert.Equal(ErrorKind.Conflict, e.Kind);
        Assert.Contains("`microagent delete w --yes` halts it first", e.Remediation);
        Assert.Empty(_processes.Killed);
    }
}
