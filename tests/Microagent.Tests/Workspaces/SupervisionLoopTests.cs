using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microagent.Agent;
using Microagent.Protocol;
using Microagent.Vmm;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>The supervise loop against a fake VM (QEMU cannot boot in a unit test) and a real workspace store in a temp dir.</summary>
public sealed class SupervisionLoopTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);
    private readonly WorkspaceStore _store;
    private readonly FakeVm _vm = new();
    private readonly ManualTime _time = new();
    private readonly Channel<SupervisorCommand> _commands = Channel.CreateUnbounded<SupervisorCommand>();
    private readonly List<string> _log = [];

    public SupervisionLoopTests()
    {
        _store = new WorkspaceStore(new StatePaths(_root), "w");
        StatePaths.EnsureDirectory(_store.Dir);
        _store.Initialize("created");
        _store.Transition(WorkspaceState.Starting, "start");
        _store.Transition(WorkspaceState.Running, "up");
    }

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    private sealed class FakeVm : ISupervisedVm
    {
        private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _vsock = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool PowersOff { get; set; } = true;
        public TimeSpan? ShutdownWindow { get; private set; }
        public bool Disposed { get; private set; }
        public long Opened { get; set; }

        private readonly Channel<QmpEvent> _events = Channel.CreateUnbounded<QmpEvent>();

        public string RunState { get; set; } = RunStates.Running;
        public int Continued { get; private set; }
        public ChannelReader<QmpEvent> Events => _events.Reader;
        public void Send(string name, JsonObject? data = null) => _events.Writer.TryWrite(new QmpEvent(name, data));
        public Task<string?> QueryStatusAsync(CancellationToken ct) => Task.FromResult<string?>(RunState);

        public Task ContinueAsync(CancellationToken ct)
        {
            Continued++;
            if (RunState != RunStates.Running) Send(QmpEventNames.Resume); // QEMU: cont of a running VM changes nothing, says nothing
            RunState = RunStates.Running;
            return Task.CompletedTask;
        }

        public int Stopped { get; private set; }
        public List<DateTimeOffset> ClockSets { get; } = [];

        public Task StopAsync(CancellationToken ct)
        {
            Stopped++;
            RunState = RunStates.Paused;
            Send(QmpEventNames.Stop);
            return Task.CompletedTask;
        }

        public Task<GuestClockSync> SetGuestClockAsync(DateTimeOffset now, CancellationToken ct)
        {
            lock (ClockSets) ClockSets.Add(now);
            return Task.FromResult(new GuestClockSync(TimeSpan.FromSeconds(-3), TimeSpan.Zero, 1, Settled: true));
        }

        public int QemuPid => 4242;
        public Task<int> Exited => _exited.Task;
        public Task VsockCompletion => _vsock.Task;
        public long ConnectionsOpened => Opened;
        public int ActiveConnections => 0;

        public void Exit(int code, string? shutdownCause = null)
        {
            if (shutdownCause is not null) Send(QmpEventNames.Shutdown, new JsonObject { ["guest"] = true, ["reason"] = shutdownCause });
            _events.Writer.TryComplete();
            _exited.TrySetResult(code);
        }
        public void FailChannel(string message) => _vsock.TrySetException(new IOException(message));
        public void EndChannel() => _vsock.TrySetResult();

        public Task<bool> ShutdownAsync(TimeSpan window, CancellationToken ct = default)
        {
            ShutdownWindow = window;
            Exit(PowersOff ? 0 : 137, PowersOff ? ShutdownCauses.GuestShutdown : null);
            return Task.FromResult(PowersOff);
        }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            Exit(137);
            _vsock.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }

    private long _free = 1L << 30;

    private SupervisionLoop Loop(TimeSpan? ttl = null) => new(_store, _vm, new IdleLease(ttl ?? TimeSpan.Zero, _time), _commands.Reader,
        new SupervisionOptions { Tick = TimeSpan.FromMilliseconds(10), ChannelExitGrace = TimeSpan.FromMilliseconds(200), FreeBytes = _ => Interlocked.Read(ref _free) },
        m => { lock (_log) _log.Add(m); });

    private WorkspaceState[] Events() => _store.ReadEvents(0, out _).Select(e => e.State).ToArray();

    [Fact]
    public async Task A_vsock_backend_fault_kills_the_vm_and_records_failed_with_the_reason()
    {
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.FailChannel("virtqueue 1: descriptor loop");
        Assert.Equal("failed", await run);
        Assert.True(_vm.Disposed);
        var state = _store.ReadState();
        Assert.Equal(WorkspaceState.Failed, state.State);
        Assert.Contains("virtqueue 1: descriptor loop", state.Detail);
        Assert.Contains("vsock", state.Detail);
    }

    [Fact]
    public async Task A_channel_that_ends_because_qemu_exits_is_an_orderly_exit()
    {
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.FailChannel("vhost-user session ended");
        _vm.Exit(0, ShutdownCauses.GuestShutdown);
        Assert.Equal("stopped", await run);
        Assert.Equal(WorkspaceState.Stopped, _store.ReadState().State);
        Assert.Equal("the guest powered itself off", _store.ReadState().Detail);
    }

    [Fact]
    public async Task Qemu_dying_is_failed_with_the_signal()
    {
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.Exit(137);
        Assert.Equal("failed", await run);
        Assert.Contains("crashed: killed by signal 9", _store.ReadState().Detail);
    }

    [Fact]
    public async Task A_full_host_disk_pauses_with_the_reason_and_free_space_then_the_supervisor_continues_the_guest()
    {
        Interlocked.Exchange(ref _free, 0);
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.RunState = RunStates.IoError;
        _vm.Send(QmpEventNames.BlockIoError, new JsonObject { ["device"] = "", ["node-name"] = "root", ["operation"] = "write", ["action"] = "stop", ["nospace"] = true, ["reason"] = "No space left on device" });
        _vm.Send(QmpEventNames.Stop);
        await WaitUntilAsync(() => _store.ReadState().State == WorkspaceState.Paused);
        var paused = _store.ReadState();
        Assert.Equal(PauseCauses.HostDiskFull, paused.PauseCause);
        Assert.StartsWith("host disk full: 0 B free on the filesystem of " + _store.Dir, paused.Detail);
        Assert.False(File.Exists(_store.Layout.Reserve)); // released so that the record could be written
        Assert.Equal(0, _vm.Continued);

        Interlocked.Exchange(ref _free, 1L << 30);
        // The event is appended after state.json is written: wait for it, the last of the two.
        await WaitUntilAsync(() => Events().Length == 5);
        Assert.Equal(1, _vm.Continued);
        Assert.Null(_store.ReadState().PauseCause);
        Assert.Contains("resumed", _store.ReadState().Detail);
        Assert.True(File.Exists(_store.Layout.Reserve));
        Assert.Equal([WorkspaceState.Prepared, WorkspaceState.Starting, WorkspaceState.Running, WorkspaceState.Paused, WorkspaceState.Running], Events());

        _vm.Exit(0, ShutdownCauses.GuestShutdown);
        Assert.Equal("stopped", await run);
    }

    [Fact]
    public async Task A_disk_error_reported_while_the_guest_runs_again_does_not_leave_it_paused()
    {
        // A request retried by cont can fail once more after the VM runs again: QEMU reports the error, but no STOP follows,
        // and the next cont (of a running VM) brings no RESUME. The supervisor must read QEMU's run state, not wait forever.
        Interlocked.Exchange(ref _free, 1L << 30);
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.Send(QmpEventNames.BlockIoError, new JsonObject { ["operation"] = "write", ["action"] = "stop", ["nospace"] = true });
        await WaitUntilAsync(() => Events().Length == 5);
        Assert.Equal([WorkspaceState.Prepared, WorkspaceState.Starting, WorkspaceState.Running, WorkspaceState.Paused, WorkspaceState.Running], Events());
        Assert.Equal(WorkspaceState.Running, _store.ReadState().State);
        Assert.Null(_store.ReadState().PauseCause);

        _vm.Exit(0, ShutdownCauses.GuestShutdown);
        Assert.Equal("stopped", await run);
    }

    [Fact]
    public async Task Halt_while_the_host_has_paused_the_guest_stops_it_at_once_and_says_why()
    {
        Interlocked.Exchange(ref _free, 0);
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.Send(QmpEventNames.BlockIoError, new JsonObject { ["operation"] = "write", ["action"] = "stop", ["nospace"] = true });
        await WaitUntilAsync(() => _store.ReadState().State == WorkspaceState.Paused);
        _commands.Writer.TryWrite(new SupervisorCommand(new ControlRequest { Type = ControlVerb.Halt }));
        Assert.Equal("killed", await run);
        Assert.Null(_vm.ShutdownWindow); // the frozen guest was not asked (it could not answer)
        Assert.Equal(WorkspaceState.Stopped, _store.ReadState().State);
        Assert.Contains("frozen guest cannot power off", _store.ReadState().Detail);
    }

    [Fact]
    public async Task A_guest_panic_event_is_failed_with_the_panic_lines_from_the_serial_log()
    {
        File.WriteAllText(_store.SerialLogPath, "booting\nsysrq: Trigger a crash\nKernel panic - not syncing: sysrq triggered crash\nCPU: 0 PID: 1\n");
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.Send(QmpEventNames.GuestPanicked, new JsonObject { ["action"] = "pause" });
        _vm.Exit(0, ShutdownCauses.GuestPanic);
        Assert.Equal("failed", await run);
        var detail = _store.ReadState().Detail!;
        Assert.StartsWith("guest kernel panic:\nKernel panic - not syncing: sysrq triggered crash", detail);
        Assert.DoesNotContain("powered itself off", detail);
    }

    [Fact]
    public async Task Halt_request_powers_off_within_its_window_through_stopping()
    {
        var run = Loop().RunAsync(null, CancellationToken.None);
        _commands.Writer.TryWrite(new SupervisorCommand(new ControlRequest { Type = ControlVerb.Halt, TimeoutMs = 1500 }));
        Assert.Equal("halted", await run);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), _vm.ShutdownWindow);
        Assert.True(_vm.Disposed);
        Assert.Equal([WorkspaceState.Prepared, WorkspaceState.Starting, WorkspaceState.Running, WorkspaceState.Stopping, WorkspaceState.Halted], Events());
        Assert.Null(_store.ReadState().QemuPid);
    }

    [Fact]
    public async Task A_guest_that_does_not_power_off_in_time_is_failed()
    {
        _vm.PowersOff = false;
        var run = Loop().RunAsync(null, CancellationToken.None);
        _commands.Writer.TryWrite(new SupervisorCommand(new ControlRequest { Type = ControlVerb.Halt }));
        await run;
        Assert.Equal(WorkspaceSupervisor.DefaultHaltWindow, _vm.ShutdownWindow);
        Assert.Equal(WorkspaceState.Failed, _store.ReadState().State);
        Assert.Contains("did not power off within 20 s", _store.ReadState().Detail);
    }

    [Fact]
    public async Task Kill_request_stops_without_asking_the_guest()
    {
        var run = Loop().RunAsync(null, CancellationToken.None);
        _commands.Writer.TryWrite(new SupervisorCommand(new ControlRequest { Type = ControlVerb.Kill }));
        Assert.Equal("killed", await run);
        Assert.Null(_vm.ShutdownWindow);
        Assert.Equal(WorkspaceState.Stopped, _store.ReadState().State);
        Assert.Equal("killed on request", _store.ReadState().Detail);
    }

    private async Task<ControlResponse> FreezeAsync(ControlVerb verb, string? reason = null)
    {
        var command = new SupervisorCommand(new ControlRequest { Type = verb, Reason = reason });
        _commands.Writer.TryWrite(command);
        return await command.Reply.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_user_pause_stops_the_vcpus_freezes_the_lease_and_resume_sets_the_clock()
    {
        var run = Loop(TimeSpan.FromSeconds(5)).RunAsync(null, CancellationToken.None);
        Assert.True((await FreezeAsync(ControlVerb.Pause, "review")).Ok);
        var paused = _store.ReadState();
        Assert.Equal(WorkspaceState.Paused, paused.State);
        Assert.Equal(PauseCauses.User, paused.PauseCause);
        Assert.Equal("paused on request: review", paused.Detail);
        Assert.Equal(1, _vm.Stopped);
        Assert.True((await FreezeAsync(ControlVerb.Pause)).Ok); // already paused: nothing more
        Assert.Equal(1, _vm.Stopped);

        _time.Advance(TimeSpan.FromSeconds(60)); // far past the ttl, but paused time is not idle time
        var before = DateTimeOffset.UtcNow;
        Assert.True((await FreezeAsync(ControlVerb.Resume)).Ok);
        Assert.False(run.IsCompleted);
        var resumed = _store.ReadState();
        Assert.Equal(WorkspaceState.Running, resumed.State);
        Assert.Null(resumed.PauseCause);
        Assert.Contains("guest clock set from the host", resumed.Detail);
        Assert.Equal(1, _vm.Continued);
        Assert.Single(_vm.ClockSets);
        Assert.InRange(_vm.ClockSets[0], before, DateTimeOffset.UtcNow);

        _time.Advance(TimeSpan.FromSeconds(6)); // now idle time counts again
        Assert.Equal("reaped", await run);
    }

    [Fact]
    public async Task A_halt_of_a_user_paused_guest_thaws_it_first_so_it_can_power_off()
    {
        var run = Loop().RunAsync(null, CancellationToken.None);
        Assert.True((await FreezeAsync(ControlVerb.Pause)).Ok);
        _commands.Writer.TryWrite(new SupervisorCommand(new ControlRequest { Type = ControlVerb.Halt }));
        Assert.Equal("halted", await run);
        Assert.Equal(1, _vm.Continued);
        Assert.Equal(WorkspaceState.Halted, _store.ReadState().State);
    }

    [Fact]
    public async Task Over_a_host_pause_a_user_pause_is_refused_and_resume_waits_for_disk_space()
    {
        Interlocked.Exchange(ref _free, 0);
        var run = Loop().RunAsync(null, CancellationToken.None);
        _vm.RunState = RunStates.IoError;
        _vm.Send(QmpEventNames.BlockIoError, new JsonObject { ["device"] = "", ["operation"] = "write", ["action"] = "stop", ["nospace"] = true, ["reason"] = "No space left on device" });
        await WaitUntilAsync(() => _store.ReadState().State == WorkspaceState.Paused);

        var pause = await FreezeAsync(ControlVerb.Pause);
        Assert.False(pause.Ok);
        Assert.Contains("disk is full", pause.Error);
        var early = await FreezeAsync(ControlVerb.Resume);
        Assert.False(early.Ok);
        Assert.Contains("still too full", early.Error);
        Assert.Equal(PauseCauses.HostDiskFull, _store.ReadState().PauseCause);

        Interlocked.Exchange(ref _free, 1L << 30);
        Assert.True((await FreezeAsync(ControlVerb.Resume)).Ok);
        Assert.Equal(WorkspaceState.Running, _store.ReadState().State);
        Assert.Single(_vm.ClockSets);
        Assert.False(run.IsCompleted);
        _commands.Writer.TryWrite(new SupervisorCommand(new ControlRequest { Type = ControlVerb.Kill }));
        Assert.Equal("killed", await run);
    }

    [Fact]
    public async Task An_expired_lease_reaps_the_workspace_and_connections_renew_it()
    {
        var loop = Loop(TimeSpan.FromSeconds(5));
        var run = loop.RunAsync(null, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(4));
        _vm.Opened = 1; // a connection: the loop's next look renews the lease
        await WaitUntilAsync(() => _store.ReadState().LastActivity is { } last && last >= _time.GetUtcNow() - TimeSpan.FromSeconds(1));
        Assert.False(run.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal("reaped", await run);
        var state = _store.ReadState();
        Assert.Equal(WorkspaceState.Halted, state.State);
        Assert.Contains("ttl", state.Detail);
    }

    [Fact]
    public async Task The_workload_result_is_written_and_the_workspace_stops()
    {
        var workload = Task.FromResult(new WorkloadResult { Command = "true", Status = ExecStatuses.Exited, ExitCode = 3 });
        Assert.Equal("workload done", await Loop().RunAsync(workload, CancellationToken.None));
        Assert.Equal(3, _store.ReadResult()!.ExitCode);
        Assert.Equal(WorkspaceState.Stopped, _store.ReadState().State);
        Assert.Equal("the workload exited with code 3", _store.ReadState().Detail);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in 10 s");
            await Task.Delay(10);
        }
    }
}
