using System.Diagnostics;
using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Mediation;

namespace Microagent.Workspaces;

/// <summary>
/// The per-workspace supervisor (docs/ARCHITECTURE.md "Supervisor"): one detached process per running workspace (the
/// <c>microagent</c> binary in the hidden <c>__supervise</c> mode). It owns QEMU (which dies with it: pdeathsig), the vsock
/// backend, <c>--vsock</c> proxies, the mediation channel and the idle lease; serves <c>control.sock</c>
/// (<see cref="ControlServer"/>); runs setup and the workload (<see cref="WorkloadRunner"/>); and writes every state change
/// from its start until it exits (<see cref="SupervisionLoop"/> decides the end).
/// Invariant: when it returns, no QEMU and no socket of the workspace remain and the state is an end state.
/// </summary>
internal sealed class WorkspaceSupervisor : IControlHandler
{
    /// <summary>The hidden CLI verb that runs a supervisor.</summary>
    public const string HiddenVerb = "__supervise";

    /// <summary>How long the guest may take to power off on halt before it is killed and the workspace is failed.</summary>
    public static readonly TimeSpan DefaultHaltWindow = TimeSpan.FromSeconds(20);

    private readonly WorkspaceStore _store;
    private readonly Channel<SupervisorCommand> _commands = Channel.CreateUnbounded<SupervisorCommand>();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private IdleLease _lease = new(TimeSpan.Zero);
    private WorkspaceVm? _vm;
    private VsockTcpProxy? _mediation;
    private MediationConfig? _mediationConfig;

    private WorkspaceSupervisor(StatePaths paths, string name) => _store = new WorkspaceStore(paths, name);

    /// <summary>Runs the supervisor of workspace <paramref name="name"/> until the VM is gone; returns the process exit code.</summary>
    public static Task<int> RunAsync(StatePaths paths, string name, CancellationToken ct) => new WorkspaceSupervisor(paths, name).RunAsync(ct);

    /// <summary>A line on supervisor.log; a full host disk must not stop the supervisor, so a failed write is dropped.</summary>
    private static void Log(string message)
    {
        try { Console.Error.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {message}"); }
        catch (IOException) { }
    }

    private async Task<int> RunAsync(CancellationToken ct)
    {
        var config = _store.ReadConfig();
        var boot = _store.ReadBoot();
        int pid = Environment.ProcessId;
        _store.Update(r => r with { SupervisorPid = pid, SupervisorStartTime = ProcessTable.StartTime(pid), Boot = boot });
        Log($"supervisor {pid} for '{config.Name}': {boot.MemoryMiB} MiB, {boot.Cpus} vCPU, ttl {boot.TtlSeconds} s");

        var proxies = new List<VsockTcpProxy>();
        ControlServer? control = null;
        string finalState = "";
        try
        {
            var cap = new GuestConnectionCap(_store, GuestConnectionCap.FromEnvironment(), Log);
            var assets = await BootAssets.PrepareAsync(_store.Paths, null, ct).ConfigureAwait(false);
            Log($"boot assets ready at {_clock.ElapsedMilliseconds} ms (kernel verified, initramfs, {assets.Accelerator.Accelerator.ToString().ToLowerInvariant()})");
            var vm = _vm = await WorkspaceVm.BootAsync(_store.Dir, assets, _store.DiskPath, boot.MemoryMiB, boot.Cpus, config.Hostname, ephemeral: boot.Ephemeral, ct,
                cap.Max, cap.OnRefused).ConfigureAwait(false);
            boot = boot with
            {
                Accelerator = assets.Accelerator.Accelerator.ToString().ToLowerInvariant(),
                KernelRelease = vm.Hello.Kernel,
                KernelSha256 = assets.Kernel.Sha256,
                AgentVersion = vm.Hello.AgentVersion,
                BootMs = _clock.ElapsedMilliseconds,
                ReadyAt = DateTimeOffset.UtcNow,
            };
            _store.Update(r => r with { QemuPid = vm.QemuPid, GuestReady = true, Boot = boot });
            Log($"guest ready in {boot.BootMs} ms (QEMU {vm.QemuPid}, {boot.Accelerator}, kernel {boot.KernelRelease})");

            _lease = new IdleLease(TimeSpan.FromSeconds(boot.TtlSeconds));
            control = ControlServer.Start(_store.ControlSocketPath, this);
            foreach (var m in boot.Vsock) proxies.Add(new VsockTcpProxy(_store.HybridSocketPath, m, _lease.Touch, Log));
            if (boot.Mediation is { Enabled: true } med)
            {
                _mediationConfig = med;
                _mediation = new VsockTcpProxy(_store.HybridSocketPath, med.ToMapping(), _lease.Touch, Log,
                    med.FailClosed ? TimeSpan.Zero : MediationConfig.FailOpenWait, "mediation");
                proxies.Add(_mediation);
                Log($"mediation: guest port {med.Port} -> {med.Target} ({(med.Required ? "required" : "optional")}, {(med.FailClosed ? "fail-closed" : "fail-open")})");
            }
            _lease.Touch();

            if (!_store.ReadState().SetupCompleted && config.Setup.Count > 0)
            {
                await WorkloadRunner.RunSetupAsync(vm.Agent, config, Log, ct).ConfigureAwait(false);
                _store.Update(r => r with { SetupCompleted = true });
            }
            _store.Transition(WorkspaceState.Running, "the guest agent serves exec", r => r with { ExecReady = true, LastActivity = DateTimeOffset.UtcNow });

            Task<WorkloadResult>? workload = config.Exec is { } cmd ? WorkloadRunner.RunWorkloadAsync(vm.Agent, config, cmd, Log, ct) : null;
            var loop = new SupervisionLoop(_store, vm, _lease, _commands.Reader, new SupervisionOptions { OwnerPid = boot.OwnerPid }, Log);
            finalState = await loop.RunAsync(workload, ct).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            string reason = e is MicroagentException me ? me.Message + (me.Remediation is { } r ? "\n" + r : "") : $"{e.GetType().Name}: {e.Message}";
            Log($"failed: {reason}");
            await StopVmAsync().ConfigureAwait(false);
            SupervisionLoop.TrySettle(_store, WorkspaceState.Failed, WorkloadRunner.Shorten(reason), Log);
            return 1;
        }
        catch (OperationCanceledException)
        {
            Log("terminated by signal: killing the VM");
            await StopVmAsync().ConfigureAwait(false);
            SupervisionLoop.TrySettle(_store, WorkspaceState.Stopped, "the supervisor was terminated; the VM was killed", Log);
            return 0;
        }
        finally
        {
            foreach (var p in proxies) await p.DisposeAsync().ConfigureAwait(false);
            if (control is not null) await control.DisposeAsync().ConfigureAwait(false);
            await StopVmAsync().ConfigureAwait(false);
            foreach (string f in _store.RuntimeFiles().ToList()) TryDeleteFile(f);
            Log($"supervisor exits{(finalState.Length > 0 ? $": {finalState}" : "")}");
            if (boot.Ephemeral && boot.OwnerPid is { } owner && !ProcessTable.IsAlive(owner)) TryDeleteDir(_store.Dir);
        }
    }

    private async Task StopVmAsync()
    {
        var vm = Interlocked.Exchange(ref _vm, null);
        if (vm is not null) await vm.DisposeAsync().ConfigureAwait(false);
    }

    void IControlHandler.RequestStop(ControlRequest request) => _commands.Writer.TryWrite(new SupervisorCommand(request));

    async Task<ControlResponse> IControlHandler.FreezeAsync(ControlRequest request, CancellationToken ct)
    {
        // Before the loop runs (starting) there is nothing to freeze yet; once it ends nothing reads the queue.
        if (_store.ReadState().State is not (WorkspaceState.Running or WorkspaceState.Paused))
            return new ControlResponse { Ok = false, Error = $"the workspace is {_store.ReadState().State.WireName()}" };
        var command = new SupervisorCommand(request);
        if (!_commands.Writer.TryWrite(command)) return new ControlResponse { Ok = false, Error = "the supervisor is exiting" };
        return await command.Reply.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    async Task<MediationReadiness?> IControlHandler.MediationAsync(bool sever, CancellationToken ct)
    {
        if (_mediation is not { } proxy || _mediationConfig is not { } med) return null;
        if (sever) proxy.Sever();
        return await MediationProbe.ReadinessAsync(med, proxy.IsSevered, proxy.ActiveConnections, proxy.TotalConnections, ct).ConfigureAwait(false);
    }

    void IControlHandler.Describe(ControlResponse response)
    {
        response.State = _store.ReadState().State;
        response.ActiveConnections = Volatile.Read(ref _vm)?.ActiveConnections ?? 0;
        response.LastActivity = _lease.LastActivity;
    }

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void TryDeleteDir(string path)
    {
        try { Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
