using System.Diagnostics;
using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Mediation;
using Microagent.Networking;

namespace Microagent.Workspaces;

/// <summary>
/// The per-workspace supervisor (docs/ARCHITECTURE.md "Supervisor"): one detached process per running workspace (the
/// <c>microagent</c> binary in the hidden <c>__supervise</c> mode). It owns QEMU (which dies with it: pdeathsig), the vsock
/// backend, <c>--vsock</c> proxies, the mediation channel and the idle lease; serves <c>control.sock</c>
/// (<see cref="ControlServer"/>); runs setup and the workload (<see cref="WorkloadRunner"/>); and writes every state change
/// from its start until it exits (<see cref="SupervisionLoop"/> decides the end).
/// Invariant: when it returns, no QEMU and no socket of the workspace remain and the state is an end state, or quarantined
/// with its pids cleared (docs/ARCHITECTURE.md "Quarantine").
/// </summary>
internal sealed partial class WorkspaceSupervisor : IControlHandler, Containment.IQuarantineHost
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
    private NetworkConfig _network = NetworkConfig.Default;
    private EgressBroker? _broker;
    private PortPublisher? _published;
    private readonly List<VsockTcpProxy> _proxies = [];
    private Models.ModelForwardHost? _modelForward;

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
        _diskNames = [.. config.Disks.Select(d => d.Name)];
        int pid = Environment.ProcessId;
        _store.Update(r => r with { SupervisorPid = pid, SupervisorStartTime = ProcessTable.StartTime(pid), Boot = boot });
        Log($"supervisor {pid} for '{config.Name}': {boot.MemoryMiB} MiB, {boot.Cpus} vCPU, ttl {boot.TtlSeconds} s");

        var proxies = _proxies;
        ControlServer? control = null;
        IReadOnlyList<IDisposable> diskLocks = [];
        string finalState = "";
        try
        {
            // Shared data disks stay locked for the VM's life (released when this process ends, however it ends).
            diskLocks = Volumes.DataDisks.Lock(_store.Paths, config.Name, config.Disks);
            var cap = new GuestConnectionCap(_store, GuestConnectionCap.FromEnvironment(), Log);
            var assets = await BootAssets.PrepareAsync(_store.Paths, null, ct, boot.KernelOverride, boot.Backend).ConfigureAwait(false);
            Log($"boot assets ready at {_clock.ElapsedMilliseconds} ms (kernel verified, initramfs, {assets.Accelerator.Accelerator.ToString().ToLowerInvariant()})");
            string agentBuild = await Snapshots.AgentBuild.CurrentAsync(ct).ConfigureAwait(false);
            var outcome = await Templates.TemplateBoot.BootAsync(_store, config, boot, assets, agentBuild, cap, Log, ct).ConfigureAwait(false);
            var (vm, restore) = (_vm = outcome.Vm, outcome.Restore);
            boot = outcome.Boot with
            {
                Accelerator = assets.Accelerator.Accelerator.ToString().ToLowerInvariant(),
                KernelRelease = vm.Hello.Kernel,
                KernelSha256 = assets.Kernel.Sha256,
                AgentVersion = vm.Hello.AgentVersion,
                BootMs = _clock.ElapsedMilliseconds,
                ReadyAt = DateTimeOffset.UtcNow,
                RestoredFrom = restore is { Template: null } ? restore.Label : null,
            };
            _store.Update(r => r with { QemuPid = vm.QemuPid, GuestReady = true, Boot = boot });
            Log($"guest ready in {boot.BootMs} ms (QEMU {vm.QemuPid}, {boot.Accelerator}, kernel {boot.KernelRelease}, {StartKind(boot)})");
            string networkMode = (boot.Network ?? NetworkConfig.Default).Mode;
            await vm.Agent.SetUpNetworkAsync(networkMode, ct).ConfigureAwait(false);
            Log($"network {networkMode} set up at {_clock.ElapsedMilliseconds} ms");

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
            StartNetwork(boot, vm);
            if (boot.Model is { } model)
            {
                // The model forward (docs/ARCHITECTURE.md "Model runner"): the host listener first, then the guest's (after a restore too).
                _modelForward = Models.ModelForwardHost.Start(_store, model, () => _lease.Touch(), Log);
                await vm.Agent.StartModelForwardAsync(ct).ConfigureAwait(false);
                Log($"model forward up at {_clock.ElapsedMilliseconds} ms");
            }
            _lease.Touch();
            await Volumes.DataDisks.MountAllAsync(vm.Agent, config.Disks, Log, ct).ConfigureAwait(false);

            if (!_store.ReadState().SetupCompleted && config.Setup.Count > 0)
            {
                await WorkloadRunner.RunSetupAsync(vm.Agent, config, Log, ct).ConfigureAwait(false);
                _store.Update(r => r with { SetupCompleted = true });
            }
            _store.Transition(WorkspaceState.Running, $"the guest agent serves exec ({StartKind(boot)})", r => r with { ExecReady = true, LastActivity = DateTimeOffset.UtcNow });

            Task<WorkloadResult>? workload = config.Exec is { } cmd ? WorkloadRunner.RunWorkloadAsync(vm.Agent, config, cmd, Log, ct, restored: restore is not null) : null;
            var context = new Snapshots.CaptureContext(config.ImageDigest, assets.Kernel.Sha256, boot.KernelRelease, assets.Qemu.Version.ToString(3),
                boot.MemoryMiB, boot.Cpus, agentBuild);
            var loop = new SupervisionLoop(_store, vm, _lease, _commands.Reader, new SupervisionOptions
            {
                OwnerPid = boot.OwnerPid,
                Capture = vm.CanSnapshot
                    ? (tag, paused, other, c) => new Snapshots.SnapshotCapture(_store, vm, context, other, Log).CaptureAsync(tag, paused, c)
                    : null,
                QuarantineHost = this,
                Forensic = async (tag, c) =>
                {
                    var info = await new Snapshots.SnapshotCapture(_store, vm, context, _ => { }, Log).CaptureForensicAsync(tag, c).ConfigureAwait(false);
                    return $"forensic snapshot {tag} ({Tools.ByteSize.Format(info.SizeBytes)}: memory dump and disk layer, not restorable) in {info.Directory}";
                },
            }, Log);
            finalState = await loop.RunAsync(workload, ct).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            string reason = e is MicroagentException me ? me.Message + (me.Remediation is { } r ? "\n" + r : "") : $"{e.GetType().Name}: {e.Message}";
            Log($"failed: {reason}");
            await StopVmAsync().ConfigureAwait(false);
            SupervisionLoop.TrySettle(_store, WorkspaceState.Failed, WorkloadRunner.Shorten(reason), Log); // a quarantine stays (Settle)
            return 1;
        }
        catch (OperationCanceledException)
        {
            Log("terminated by signal: killing the VM");
            await StopVmAsync().ConfigureAwait(false);
            if (_store.ReadState().State != WorkspaceState.Quarantined) // only halt, stop or kill release a quarantine
                SupervisionLoop.TrySettle(_store, WorkspaceState.Stopped, "the supervisor was terminated; the VM was killed", Log);
            return 0;
        }
        finally
        {
            _commands.Writer.TryComplete(); // a request queued after the loop ended is answered, not left to time out
            while (_commands.Reader.TryRead(out var late)) late.Reply.TrySetResult(new ControlResponse { Ok = false, Error = "the supervisor is exiting" });
            if (Interlocked.Exchange(ref _published, null) is { } published) await published.DisposeAsync().ConfigureAwait(false);
            if (Interlocked.Exchange(ref _broker, null) is { } broker) await broker.DisposeAsync().ConfigureAwait(false);
            if (Interlocked.Exchange(ref _modelForward, null) is { } forward) await forward.DisposeAsync().ConfigureAwait(false);
            foreach (var p in proxies) await p.DisposeAsync().ConfigureAwait(false);
            if (control is not null) await control.DisposeAsync().ConfigureAwait(false);
            await StopVmAsync().ConfigureAwait(false);
            foreach (var l in diskLocks) l.Dispose();
            foreach (string f in _store.RuntimeFiles().ToList()) TryDeleteFile(f);
            LeaveQuarantined();
            Log($"supervisor exits{(finalState.Length > 0 ? $": {finalState}" : "")}");
            if (boot.Ephemeral && boot.OwnerPid is { } owner && !ProcessTable.IsAlive(owner)) TryDeleteDir(_store.Dir);
        }
    }

    /// <summary>How this boot started, as events and the log say it (docs/ARCHITECTURE.md "Warm start").</summary>
    private static string StartKind(BootRecord boot) =>
        boot.WarmFrom is { } key ? $"warm start from template {key}"
        : boot.RestoredFrom is { } snap ? $"restored from snapshot {snap}"
        : $"cold boot{(boot.ColdReason is { } why ? $": {why}" : "")}{(boot.CapturedTemplate is { } t ? $"; captured template {t}" : "")}";

    /// <summary>
    /// The host side of the network (docs/ARCHITECTURE.md "Networking"): for <c>user</c>, the egress broker on the guest's egress
    /// and DNS ports and a listener per published port; <c>isolated</c> has neither (nothing listens, so the vsock backend
    /// resets any guest connection to those ports).
    /// </summary>
    private void StartNetwork(BootRecord boot, WorkspaceVm vm)
    {
        _network = boot.Network ?? NetworkConfig.Default;
        if (_network.IsIsolated) { Log("network: isolated (loopback only, no egress)"); return; }
        bool guard = LoopbackGuard.FromEnvironment();
        var policy = new EgressPolicy(_network, guard);
        _broker = new EgressBroker(_store.HybridSocketPath, policy, new EgressAudit(_store.EgressAuditPath, Log), _lease.Touch, Log).Start();
        if (_network.Publish.Count > 0) _published = PortPublisher.Start(_network.Publish, vm.Agent.ForwardAsync, _lease.Touch, Log);
    }

    /// <summary>
    /// A quarantined workspace outlives its supervisor (docs/ARCHITECTURE.md "Quarantine"): on the way out, with QEMU gone, the
    /// pids are cleared so reconcile sees nothing left to clean; the state stays quarantined until halt, stop or kill.
    /// </summary>
    private void LeaveQuarantined()
    {
        try
        {
            if (_store.ReadState().State == WorkspaceState.Quarantined)
                _store.Update(r => r.State == WorkspaceState.Quarantined ? r with { SupervisorPid = null, SupervisorStartTime = null, QemuPid = null, GuestReady = false, ExecReady = false } : r);
        }
        catch (Exception e) when (e is MicroagentException or IOException) { Log($"cannot clear the pids of the quarantined workspace: {e.Message}"); }
    }

    string Containment.IQuarantineHost.SeverNetwork()
    {
        var broker = Volatile.Read(ref _broker);
        var published = Volatile.Read(ref _published);
        int ports = published?.Ports.Count ?? 0;
        broker?.Sever();
        published?.Sever();
        _severed = true;
        Log("network severed by quarantine: egress, DNS and published ports closed");
        return (broker is null ? "isolated network: no egress or DNS" : "egress connections aborted, DNS stopped") +
            $"; {ports} published port{(ports == 1 ? "" : "s")} closed with their connections";
    }

    string? Containment.IQuarantineHost.SeverMediation()
    {
        if (_mediation is not { } proxy) return null;
        int open = proxy.ActiveConnections;
        proxy.Sever();
        return $"mediation channel severed ({open} open connection{(open == 1 ? "" : "s")} closed)";
    }

    string? Containment.IQuarantineHost.SeverModel() => Volatile.Read(ref _modelForward)?.Sever();

    string? Containment.IQuarantineHost.SeverVsock()
    {
        var plain = _proxies.Where(p => !ReferenceEquals(p, _mediation)).ToList();
        if (plain.Count == 0) return null;
        int open = plain.Sum(p => p.ActiveConnections);
        foreach (var p in plain) p.Sever();
        return $"{plain.Count} --vsock prox{(plain.Count == 1 ? "y" : "ies")} severed ({open} open connection{(open == 1 ? "" : "s")} closed)";
    }

    async Task<NetworkStatus> IControlHandler.NetworkStateAsync(bool sever, CancellationToken ct)
    {
        var broker = Volatile.Read(ref _broker);
        var published = Volatile.Read(ref _published);
        if (sever)
        {
            broker?.Sever();
            published?.Sever();
            _severed = true;
            Log("network severed on request: egress, DNS and published ports closed");
        }
        return new NetworkStatus(_network.Mode, published?.Ports ?? [], broker?.Counters, _severed, _network.ToString(),
            await GuestCountersAsync(ct).ConfigureAwait(false));
    }

    /// <summary>The guest's own counters (agent <c>net-stats</c>: packets nothing carries, captured connections, DNS queries); null when it does not answer within a second (paused, busy).</summary>
    private async Task<GuestNetCounters?> GuestCountersAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _vm) is not { } vm || _store.ReadState().State != WorkspaceState.Running) return null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            var s = await vm.Agent.NetStatsAsync(timeout.Token).ConfigureAwait(false);
            return new GuestNetCounters(s.DroppedPackets, s.CapturedConnections, s.DnsQueries);
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException or Microagent.Protocol.ProtocolException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    private volatile bool _severed;

    private async Task StopVmAsync()
    {
        var vm = Interlocked.Exchange(ref _vm, null);
        if (vm is not null) await vm.DisposeAsync().ConfigureAwait(false);
    }

    void IControlHandler.RequestStop(ControlRequest request) => _commands.Writer.TryWrite(new SupervisorCommand(request));

    async Task<ControlResponse> IControlHandler.FreezeAsync(ControlRequest request, CancellationToken ct)
    {
        // Before the loop runs (starting) there is nothing to freeze yet; once it ends nothing reads the queue.
        var now = _store.ReadState().State;
        if (now is not (WorkspaceState.Running or WorkspaceState.Paused) && !(now == WorkspaceState.Quarantined && request.Type == ControlVerb.Quarantine))
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

    ConsoleStatus IControlHandler.Console(bool sever)
    {
        // Before the VM exists (starting) there is no session to close; a sever then still holds once it does (the severed flag).
        var vm = Volatile.Read(ref _vm);
        int closed = 0;
        if (sever)
        {
            _consoleSevered = true;
            closed = vm?.SeverConsole() ?? 0;
            Log($"console severed on request: {closed} session(s) closed, new ones refused until the next start");
        }
        return new ConsoleStatus(_consoleSevered || (vm?.ConsoleSevered ?? false), vm?.ConsoleSessions ?? 0, closed);
    }

    private volatile bool _consoleSevered;

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
