using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces.Manager;

/// <summary>The library's pause/resume rules (<c>PauseControl</c>) over a real store, with a pretend supervisor behind the control socket.</summary>
public sealed class PauseControlTests : IDisposable
{
    private const int Pid = 4545;
    private readonly TempState _state = new();
    private readonly FakeProcessTable _processes = new();
    private readonly FakeControlClient _control = new();

    public void Dispose() => _state.Dispose();

    private WorkspaceManager Manager() => _state.Manager(_processes, new FakeSpawner(_processes, Pid), _control);

    private WorkspaceStore Running()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid, qemu: 9);
        _processes.Add(Pid);
        _processes.Add(9, "qemu-system-x86_64");
        return store;
    }

    [Fact]
    public async Task Pause_sends_the_reason_to_the_supervisor_and_reports_its_state()
    {
        var store = Running();
        _control.Answer = r =>
        {
            store.Transition(WorkspaceState.Paused, $"paused on request: {r.Reason}", s => s with { PauseCause = PauseCauses.User });
            return new ControlResponse { Ok = true };
        };
        var status = await Manager().PauseAsync("w", "review");
        Assert.Equal((WorkspaceState.Paused, PauseCauses.User), (status.State, status.PauseCause));
        var sent = Assert.Single(_control.Requests);
        Assert.Equal((ControlVerb.Pause, "review"), (sent.Type, sent.Reason));

        await Manager().PauseAsync("w"); // a user pause again: nothing is sent
        Assert.Single(_control.Requests);
    }

    [Fact]
    public async Task Pause_of_a_stopped_workspace_or_over_a_host_pause_is_a_conflict_and_a_bad_reason_is_invalid()
    {
        _state.InState("h", WorkspaceState.Halted, null);
        var halted = await Assert.ThrowsAsync<WorkspaceStateException>(() => Manager().PauseAsync("h"));
        Assert.Equal(ErrorKind.Conflict, halted.Kind);
        Assert.Contains("only a running workspace can be paused", halted.Message);

        var store = Running();
        var bad = await Assert.ThrowsAsync<WorkspaceSpecException>(() => Manager().PauseAsync("w", new string('x', 201)));
        Assert.Equal(ErrorKind.Invalid, bad.Kind);
        store.Transition(WorkspaceState.Paused, "host disk full: 0 B free", s => s with { PauseCause = PauseCauses.HostDiskFull });
        var host = await Assert.ThrowsAsync<WorkspaceStateException>(() => Manager().PauseAsync("w"));
        Assert.Contains("paused by the host", host.Message);
        Assert.Empty(_control.Requests);
    }

    [Fact]
    public async Task Resume_of_running_is_a_no_op_of_a_stopped_one_a_conflict_and_a_refusal_is_reported()
    {
        var store = Running();
        Assert.Equal(WorkspaceState.Running, (await Manager().ResumeAsync("w")).State);
        Assert.Empty(_control.Requests);

        store.Transition(WorkspaceState.Paused, "paused on request", s => s with { PauseCause = PauseCauses.User });
        _control.Answer = _ => new ControlResponse { Ok = false, Error = "cont failed: boom" };
        var refused = await Assert.ThrowsAsync<WorkspaceStateException>(() => Manager().ResumeAsync("w"));
        Assert.Contains("cont failed: boom", refused.Message);
        Assert.Equal(ControlVerb.Resume, Assert.Single(_control.Requests).Type);

        _state.InState("s", WorkspaceState.Halted, null);
        var stopped = await Assert.ThrowsAsync<WorkspaceStateException>(() => Manager().ResumeAsync("s"));
        Assert.Contains("not paused", stopped.Message);
        Assert.Contains("microagent start s", stopped.Remediation);
    }

    [Fact]
    public async Task Exec_while_user_paused_is_a_conflict_that_points_at_resume()
    {
        var store = Running();
        store.Transition(WorkspaceState.Paused, "paused on request", s => s with { PauseCause = PauseCauses.User });
        var e = await Assert.ThrowsAsync<WorkspaceStateException>(() => Manager().ExecAsync("w", new ExecOptions { Command = ["true"] }));
        Assert.Equal(ErrorKind.Conflict, e.Kind);
        Assert.Contains("microagent resume w", e.Remediation);
    }
}
