using Microagent.Mediation;
using Microagent.Workspaces;
using Microagent.Workspaces.Manager;

namespace Microagent.Tests.Workspaces.Manager;

/// <summary>Status projection and the mediation probe over a real store, with a pretend supervisor behind the control socket.</summary>
public sealed class StatusReaderTests : IDisposable
{
    private const int Pid = 4343;
    private static readonly MediationConfig Channel = MediationConfig.Parse("2048=127.0.0.1:9900");
    private readonly TempState _state = new();
    private readonly FakeProcessTable _processes = new();
    private readonly FakeControlClient _control = new();

    public void Dispose() => _state.Dispose();

    private StatusReader Reader() => new(_state.Paths, _processes, _control, new Reconciler(_state.Paths, _processes));

    private WorkspaceStore RunningWithMediation()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid, qemu: 9);
        store.Update(r => r with { Boot = new BootRecord { Mediation = Channel, MemoryMiB = 256, Cpus = 1 }, ExecReady = true });
        _processes.Add(Pid);
        return store;
    }

    [Fact]
    public void Projection_reports_config_state_pids_and_disk()
    {
        var store = RunningWithMediation();
        File.WriteAllBytes(store.DiskPath, new byte[4096]);
        var status = StatusReader.Project(store);
        Assert.Equal(("w", WorkspaceState.Running, true), (status.Name, status.State, status.ExecReady));
        Assert.Equal(new WorkspacePids(Pid, 9), status.Pids);
        Assert.Equal(4096, status.DiskUsageBytes);
        Assert.Equal(store.Dir, status.Directory);
        Assert.Equal("/work", status.Config.ImageWorkingDir);
    }

    [Fact]
    public async Task Probe_passes_the_supervisors_answer_through()
    {
        var store = RunningWithMediation();
        var answer = new MediationReadiness(true, "reachable", null, 2048, "127.0.0.1:9900", true, true);
        _control.Answer = _ => new ControlResponse { Ok = true, Mediation = answer };
        var status = await Reader().WithMediationAsync(store, CancellationToken.None);
        Assert.Equal(answer, status.MediationReady);
        Assert.Equal([ControlVerb.NetworkStatus, ControlVerb.MediationStatus], _control.Requests.Select(r => r.Type));
    }

    [Fact]
    public async Task Probe_of_a_supervisor_that_does_not_answer_is_unready_with_the_reason()
    {
        var store = RunningWithMediation();
        var status = await Reader().WithMediationAsync(store, CancellationToken.None);
        Assert.False(status.MediationReady!.Ready);
        Assert.Contains("does not answer", status.MediationReady.Detail);
        Assert.Equal(MediationReadiness.UnreachableError, status.MediationReady.Error);
    }

    [Fact]
    public async Task A_workspace_that_is_not_running_is_not_probed()
    {
        var store = _state.Prepared("w");
        store.WriteConfig(store.ReadConfig() with { Mediation = Channel });
        var status = await Reader().WithMediationAsync(store, CancellationToken.None);
        Assert.Equal(Channel, status.Mediation);
        Assert.Contains("the workspace is prepared", status.MediationReady!.Detail);
        Assert.Empty(_control.Requests);
    }

    [Fact]
    public async Task Severing_a_channel_that_this_boot_lacks_names_the_field_and_no_option()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid);
        _processes.Add(Pid);
        var e = await Assert.ThrowsAsync<WorkspaceSpecException>(() => Reader().SeverMediationAsync(store, CancellationToken.None));
        Assert.Equal("mediation", e.Field);
        Assert.DoesNotContain("--", e.Remediation);
    }

    [Fact]
    public void Exec_on_a_workspace_whose_supervisor_died_reports_the_reconciled_state()
    {
        var store = _state.InState("w", WorkspaceState.Running, Pid); // no such process
        var e = Assert.Throws<WorkspaceStateException>(() => Reader().EnsureRunning(store));
        Assert.Equal(WorkspaceState.Failed, e.State);
        Assert.Contains("died unexpectedly", e.Message);
    }
}
