using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Mediation;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>
/// The per-workspace supervisor (DESIGN.md decision 6): one detached process per running workspace (the <c>microagent</c>
/// binary in the hidden <c>__supervise</c> mode). It owns QEMU (which dies with it: pdeathsig), the vsock backend,
/// <c>--vsock</c> proxies and the idle-lease reaper; serves <c>control.sock</c>; and writes every state change after
/// <c>starting</c>. Invariant: when it returns, no QEMU and no socket of the workspace remain and the state is terminal.
/// </summary>
public sealed class WorkspaceSupervisor
{
    /// <summary>The hidden CLI verb that runs a supervisor.</summary>
    public const string HiddenVerb = "__supervise";

    /// <summary>How long the guest may take to power off on halt before it is killed and the workspace is failed.</summary>
    public static readonly TimeSpan DefaultHaltWindow = TimeSpan.FromSeconds(20);

    private const long WorkloadOutputCap = 1024 * 1024;

    private readonly WorkspaceStore _store;
    private readonly Channel<ControlRequest> _commands = Channel.CreateUnbounded<ControlRequest>();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private WorkspaceVm? _vm;
    private VsockTcpProxy? _mediation;
    private MediationConfig? _mediationConfig;
    private long _lastActivityMs;
    private long _seenConnections;
    private DateTimeOffset _lastActivityWritten = DateTimeOffset.MinValue;

    private WorkspaceSupervisor(StatePaths paths, string name) => _store = new WorkspaceStore(paths, name);

    /// <summary>Runs the supervisor of workspace <paramref name="name"/> until the VM is gone; returns the process exit code.</summary>
    public static Task<int> RunAsync(StatePaths paths, string name, CancellationToken ct) => new WorkspaceSupervisor(paths, name).RunAsync(ct);

    private static void Log(string message) =>
        Console.Error.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {message}");

    private async Task<int> RunAsync(CancellationToken ct)
    {
        var config = _store.ReadConfig();
        var boot = _store.ReadBoot();
        int pid = Environment.ProcessId;
        _store.Update(r => r with { SupervisorPid = pid, SupervisorStartTime = ProcessTable.StartTime(pid), Boot = boot });
        Log($"supervisor {pid} for '{config.Name}': {boot.MemoryMiB} MiB, {boot.Cpus} vCPU, ttl {boot.TtlSeconds} s");

        var proxies = new List<VsockTcpProxy>();
        Socket? control = null;
        string finalState = "";
        try
        {
            var baseline = new Baseline(config.Image ?? "default", config.ImageDigest, config.BaselinePath, 0,
                new ImageConfig([.. config.ImageEnv], null, null, config.ImageWorkingDir, config.ImageUser));
            var assets = await BootAssets.PrepareForBaselineAsync(_store.Paths, baseline, null, ct).ConfigureAwait(false);
            Log($"boot assets ready at {_clock.ElapsedMilliseconds} ms (kernel verified, initramfs, {assets.Accelerator.Accelerator.ToString().ToLowerInvariant()})");
            _vm = await WorkspaceVm.BootAsync(_store.Dir, assets, _store.DiskPath, boot.MemoryMiB, boot.Cpus, config.Hostname, ephemeral: boot.Ephemeral, ct)
                .ConfigureAwait(false);
            boot = boot with
            {
                Accelerator = assets.Accelerator.Accelerator.ToString().ToLowerInvariant(),
                KernelRelease = _vm.Hello.Kernel,
                KernelSha256 = assets.Kernel.Sha256,
                AgentVersion = _vm.Hello.AgentVersion,
                BootMs = _clock.ElapsedMilliseconds,
                ReadyAt = DateTimeOffset.UtcNow,
            };
            var vm = _vm;
            _store.Update(r => r with { QemuPid = vm.QemuPid, GuestReady = true, Boot = boot });
            Log($"guest ready in {boot.BootMs} ms (QEMU {vm.QemuPid}, {boot.Accelerator}, kernel {boot.KernelRelease})");

            control = ListenControl();
            foreach (var m in boot.Vsock) proxies.Add(new VsockTcpProxy(_store.HybridSocketPath, m, Touch, Log));
            if (boot.Mediation is { Enabled: true } med)
            {
                _mediationConfig = med;
                _mediation = new VsockTcpProxy(_store.HybridSocketPath, med.ToMapping(), Touch, Log,
                    med.FailClosed ? TimeSpan.Zero : MediationConfig.FailOpenWait, "mediation");
                proxies.Add(_mediation);
                Log($"mediation: guest port {med.Port} -> {med.Target} ({(med.Required ? "required" : "optional")}, {(med.FailClosed ? "fail-closed" : "fail-open")})");
            }
            Touch();

            if (!_store.ReadState().SetupCompleted && config.Setup.Count > 0)
            {
                await RunSetupAsync(config, ct).ConfigureAwait(false);
                _store.Update(r => r with { SetupCompleted = true });
            }
            _store.Transition(WorkspaceState.Running, "the guest agent serves exec", r => r with { ExecReady = true, LastActivity = DateTimeOffset.UtcNow });

            Task<WorkloadResult>? workload = config.Exec is { } cmd ? RunWorkloadAsync(config, cmd, ct) : null;
            finalState = await SuperviseAsync(boot, workload, ct).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            string reason = e is MicroagentException me ? me.Message + (me.Remediation is { } r ? "\n" + r : "") : $"{e.GetType().Name}: {e.Message}";
            Log($"failed: {reason}");
            await StopVmAsync().ConfigureAwait(false);
            TryTransition(WorkspaceState.Failed, Shorten(reason));
            return 1;
        }
        catch (OperationCanceledException)
        {
            Log("terminated by signal: killing the VM");
            await StopVmAsync().ConfigureAwait(false);
            TryTransition(WorkspaceState.Stopped, "the supervisor was terminated; the VM was killed");
            return 0;
        }
        finally
        {
            foreach (var p in proxies) await p.DisposeAsync().ConfigureAwait(false);
            control?.Dispose();
            await StopVmAsync().ConfigureAwait(false);
            foreach (string f in _store.RuntimeFiles().ToList()) TryDeleteFile(f);
            Log($"supervisor exits{(finalState.Length > 0 ? $": {finalState}" : "")}");
            if (boot.Ephemeral && boot.OwnerPid is { } owner && !ProcessTable.IsAlive(owner)) TryDeleteDir(_store.Dir);
        }
    }

    /// <summary>Waits for a halt/kill request, the workload's end, an idle lease expiry, the owner's death or QEMU's exit.</summary>
    private async Task<string> SuperviseAsync(BootRecord boot, Task<WorkloadResult>? workload, CancellationToken ct)
    {
        var vm = _vm!;
        long? ownerStart = boot.OwnerPid is { } op ? ProcessTable.StartTime(op) : null;
        if (boot.OwnerPid is not null && ownerStart is null)
        {
            await KillAsync("its owner process is gone").ConfigureAwait(false);
            return "owner gone";
        }
        Task<bool> command = _commands.Reader.WaitToReadAsync(ct).AsTask();
        while (true)
        {
            var tick = Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            var tasks = new List<Task> { vm.Exited, command, tick };
            if (workload is not null) tasks.Add(workload);
            await Task.WhenAny(tasks).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();

            if (vm.Exited.IsCompleted)
            {
                int code = await vm.Exited.ConfigureAwait(false);
                if (code == 0)
                {
                    TryTransition(WorkspaceState.Stopped, "the guest powered itself off");
                    return "stopped";
                }
                string how = code > 128 ? $"killed by signal {code - 128}" : $"status {code}";
                TryTransition(WorkspaceState.Failed, $"QEMU (pid {vm.QemuPid}) exited unexpectedly ({how}). Serial log tail:\n{WorkspaceVm.Tail(_store.SerialLogPath, 5)}");
                return "failed";
            }
            if (command.IsCompleted && _commands.Reader.TryRead(out var request))
            {
                if (request.Type == "kill")
                {
                    await KillAsync("killed on request").ConfigureAwait(false);
                    return "killed";
                }
                var window = request.TimeoutMs is > 0 ? TimeSpan.FromMilliseconds(request.TimeoutMs.Value) : DefaultHaltWindow;
                await HaltAsync(window, WorkspaceState.Halted, "halted on request").ConfigureAwait(false);
                return "halted";
            }
            if (command.IsCompleted) command = _commands.Reader.WaitToReadAsync(ct).AsTask();
            if (workload is { IsCompleted: true })
            {
                var result = await workload.ConfigureAwait(false);
                _store.WriteResult(result);
                string detail = result.Status == ExecStatuses.Exited ? $"the workload exited with code {result.ExitCode}" : $"the workload ended: {result.Status}";
                await HaltAsync(DefaultHaltWindow, WorkspaceState.Stopped, detail).ConfigureAwait(false);
                return "workload done";
            }
            ObserveActivity(vm);
            if (boot.TtlSeconds > 0 && _clock.ElapsedMilliseconds - Interlocked.Read(ref _lastActivityMs) > boot.TtlSeconds * 1000L)
            {
                await HaltAsync(DefaultHaltWindow, WorkspaceState.Halted, $"reaped: no exec/cp/connect activity for {boot.TtlSeconds} s (ttl)").ConfigureAwait(false);
                return "reaped";
            }
            if (boot.OwnerPid is { } owner && !ProcessTable.IsAlive(owner, ownerStart))
            {
                await KillAsync($"its owner process {owner} is gone").ConfigureAwait(false);
                return "owner gone";
            }
        }
    }

    private void Touch() => Interlocked.Exchange(ref _lastActivityMs, _clock.ElapsedMilliseconds);

    /// <summary>Any connection open or opened through the backend since the last look counts as activity.</summary>
    private void ObserveActivity(WorkspaceVm vm)
    {
        long opened = vm.ConnectionsOpened;
        if (opened != _seenConnections || vm.ActiveConnections > 0)
        {
            _seenConnections = opened;
            Touch();
        }
        var now = DateTimeOffset.UtcNow;
        var last = now - TimeSpan.FromMilliseconds(_clock.ElapsedMilliseconds - Interlocked.Read(ref _lastActivityMs));
        if (last - _lastActivityWritten > TimeSpan.FromSeconds(1))
        {
            _lastActivityWritten = last;
            try { _store.Update(r => r with { LastActivity = last }); } catch (IOException) { }
        }
    }

    private async Task HaltAsync(TimeSpan window, WorkspaceState final, string detail)
    {
        var vm = _vm!;
        TryTransition(WorkspaceState.Stopping, detail);
        Log($"halting ({detail}); window {window.TotalSeconds:0} s");
        using (var cts = new CancellationTokenSource(window))
        {
            try { await vm.Agent.ShutdownAsync(cts.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is MicroagentException or OperationCanceledException or IOException) { }
            try { await vm.Exited.WaitAsync(cts.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        if (vm.Exited.IsCompleted)
        {
            await StopVmAsync().ConfigureAwait(false);
            TryTransition(final, detail);
        }
        else
        {
            await StopVmAsync().ConfigureAwait(false);
            TryTransition(WorkspaceState.Failed, $"the guest did not power off within {window.TotalSeconds:0} s; QEMU was killed");
        }
    }

    private async Task KillAsync(string detail)
    {
        Log($"killing the VM: {detail}");
        await StopVmAsync().ConfigureAwait(false);
        TryTransition(WorkspaceState.Stopped, detail);
    }

    private async Task StopVmAsync()
    {
        var vm = Interlocked.Exchange(ref _vm, null);
        if (vm is not null) await vm.DisposeAsync().ConfigureAwait(false);
    }

    private void TryTransition(WorkspaceState to, string detail)
    {
        try
        {
            var current = _store.ReadState().State;
            if (current == to) return;
            if (!WorkspaceStateMachine.CanTransition(current, to))
            {
                // stopping → (halted|stopped|failed) is the only legal path out of running for graceful stops.
                if (current == WorkspaceState.Starting && to == WorkspaceState.Halted) to = WorkspaceState.Stopped;
                else return;
            }
            _store.Transition(to, detail);
        }
        catch (Exception e) when (e is MicroagentException or IOException)
        {
            Log($"cannot record state {to.WireName()}: {e.Message}");
        }
    }

    private async Task RunSetupAsync(WorkspaceConfig config, CancellationToken ct)
    {
        for (int i = 0; i < config.Setup.Count; i++)
        {
            string cmd = config.Setup[i];
            Log($"setup {i + 1}/{config.Setup.Count}: {cmd}");
            var result = await _vm!.Agent.ExecAsync(ShellRequest(config, cmd, 64 * 1024), ct: ct).ConfigureAwait(false);
            if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
            {
                string stderr = Encoding.UTF8.GetString(result.Stderr ?? []).Trim();
                string stdout = Encoding.UTF8.GetString(result.Stdout ?? []).Trim();
                throw new WorkspaceFailedException(config.Name,
                    $"setup command {i + 1} `{cmd}` failed ({result.Status}, exit {Runner.ExitCodeOf(result)}): {Shorten(stderr.Length > 0 ? stderr : stdout)}",
                    "fix the command and `microagent start` again: setup reruns until it succeeds once");
            }
        }
    }

    private async Task<WorkloadResult> RunWorkloadAsync(WorkspaceConfig config, string cmd, CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        Log($"workload: {cmd}");
        try
        {
            var r = await _vm!.Agent.ExecAsync(ShellRequest(config, cmd, WorkloadOutputCap), ct: ct).ConfigureAwait(false);
            return new WorkloadResult
            {
                Command = cmd, Status = r.Status, ExitCode = Runner.ExitCodeOf(r), Signal = r.Signal,
                Stdout = Encoding.UTF8.GetString(r.Stdout ?? []), Stderr = Encoding.UTF8.GetString(r.Stderr ?? []),
                Truncated = r.StdoutTruncated || r.StderrTruncated, Error = r.Error,
                StartedAt = started, FinishedAt = DateTimeOffset.UtcNow,
            };
        }
        catch (MicroagentException e)
        {
            return new WorkloadResult { Command = cmd, Status = "lost", ExitCode = 1, Error = e.Message, StartedAt = started, FinishedAt = DateTimeOffset.UtcNow };
        }
    }

    internal static ExecRequest ShellRequest(WorkspaceConfig config, string cmd, long cap) => new()
    {
        Argv = ["/bin/sh", "-c", cmd],
        Env = [.. config.ImageEnv, .. config.Env],
        Cwd = string.IsNullOrEmpty(config.ImageWorkingDir) ? null : config.ImageWorkingDir,
        User = string.IsNullOrEmpty(config.ImageUser) ? null : config.ImageUser,
        MaxOutputBytes = cap,
        Mode = ExecModes.Single,
    };

    private Socket ListenControl()
    {
        string path = _store.ControlSocketPath;
        File.Delete(path);
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        s.Listen(32);
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket c;
                try { c = await s.AcceptAsync().ConfigureAwait(false); }
                catch (Exception) { return; }
                _ = Task.Run(() => ServeControlAsync(c));
            }
        });
        return s;
    }

    private async Task ServeControlAsync(Socket connection)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var request = await Frame.ReadAsync(stream, WorkspaceJsonLine.Default.ControlRequest, timeout.Token).ConfigureAwait(false);
            if (request is null) return;
            var response = new ControlResponse { Ok = true };
            switch (request.Type)
            {
                case "status":
                    break;
                case "touch":
                    Touch();
                    break;
                case "halt" or "kill":
                    _commands.Writer.TryWrite(request);
                    break;
                case "mediation-status" or "sever-mediation":
                    if (_mediation is not { } proxy || _mediationConfig is not { } med)
                    {
                        response = new ControlResponse { Ok = false, Error = "this boot has no mediation channel" };
                        break;
                    }
                    if (request.Type == "sever-mediation") proxy.Sever();
                    response.Mediation = await MediationProbe.ReadinessAsync(med, proxy.IsSevered, proxy.ActiveConnections, proxy.TotalConnections, timeout.Token)
                        .ConfigureAwait(false);
                    break;
                default:
                    response = new ControlResponse { Ok = false, Error = $"unknown control request '{request.Type}'" };
                    break;
            }
            var vm = _vm;
            response.State = _store.ReadState().State;
            response.ActiveConnections = vm?.ActiveConnections ?? 0;
            response.LastActivity = DateTimeOffset.UtcNow - TimeSpan.FromMilliseconds(_clock.ElapsedMilliseconds - Interlocked.Read(ref _lastActivityMs));
            await Frame.WriteAsync(stream, response, WorkspaceJsonLine.Default.ControlResponse, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ProtocolException or MicroagentException) { }
    }

    private static string Shorten(string s) => s.Length <= 2000 ? s : s[..2000] + "…";

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void TryDeleteDir(string path)
    {
        try { Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
