using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Protocol;
using Microagent.Vmm;
using Microagent.Vsock;

namespace Microagent.Workspaces;

/// <summary>
/// One booted workspace VM: QEMU, our vhost-user-vsock backend, and an <see cref="AgentClient"/> to the
/// guest agent. Invariant: after <see cref="DisposeAsync"/> no QEMU process and no socket of this VM remain.
/// </summary>
internal sealed partial class WorkspaceVm : IAsyncDisposable, ISupervisedVm
{
    /// <summary>Longest a boot may take before it is declared failed (TCG on a loaded 2-core machine is slow).</summary>
    public static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(90);

    private readonly VhostUserVsockBackend _backend;
    private readonly QemuProcess _qemu;
    private readonly QmpClient _qmp;
    private int _disposed;

    private readonly WorkspaceLayout _layout;

    private WorkspaceVm(WorkspaceLayout layout, VhostUserVsockBackend backend, QemuProcess qemu, QmpClient qmp, Hello hello)
    {
        _layout = layout;
        _backend = backend;
        _qemu = qemu;
        _qmp = qmp;
        Hello = hello;
        Agent = new AgentClient(ct => HybridVsock.ConnectAsync(layout.HybridSocket, ProtocolInfo.AgentPort, ct));
    }

    /// <summary>The workspace directory holding sockets and logs.</summary>
    public string Directory => _layout.Dir;

    /// <summary>What the agent reported when it became ready.</summary>
    public Hello Hello { get; }

    /// <summary>Client for the guest agent.</summary>
    public AgentClient Agent { get; }

    /// <summary>Host side of the hybrid vsock: connect here and write <c>CONNECT port</c>.</summary>
    public string HybridSocketPath => _layout.HybridSocket;

    /// <summary>QEMU's process id.</summary>
    public int QemuPid => _qemu.Pid;

    /// <summary>vsock connections opened so far through the backend (either direction).</summary>
    public long ConnectionsOpened => _backend.ConnectionsOpened;

    /// <summary>vsock connections open now.</summary>
    public int ActiveConnections => _backend.ActiveConnections;

    /// <summary>
    /// Closes every console session (host connections to the guest's console port) and refuses new ones for the rest of this
    /// boot, re-plugged vsock devices included (docs/ARCHITECTURE.md "Console"); returns how many it closed.
    /// </summary>
    public int SeverConsole() => _backend.SeverGuestPort(ConsoleInfo.Port);

    /// <summary>Whether <see cref="SeverConsole"/> ran.</summary>
    public bool ConsoleSevered => _backend.IsSevered(ConsoleInfo.Port);

    /// <summary>Console sessions open now.</summary>
    public int ConsoleSessions => _backend.OpenToGuestPort(ConsoleInfo.Port);

    /// <summary>Completes when QEMU exits.</summary>
    public Task<int> Exited => _qemu.Exited;

    /// <summary>Faults when the vsock backend fails (the host ↔ guest channel is dead); completes when it is disposed.</summary>
    public Task VsockCompletion => _backend.Completion;

    /// <summary>QEMU's QMP events since the guest became ready; completes when QEMU is gone.</summary>
    public ChannelReader<QmpEvent> Events => _qmp.Events;

    /// <summary>QEMU's run state (<c>query-status</c>, <see cref="RunStates"/>).</summary>
    public async Task<string?> QueryStatusAsync(CancellationToken ct)
    {
        var status = await _qmp.ExecuteAsync("query-status", null, ct).ConfigureAwait(false);
        return status?["status"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    }

    /// <summary>Each drive's I/O totals since QEMU started (QMP <c>query-blockstats</c>; read-only, safe beside the supervise loop).</summary>
    public async Task<IReadOnlyList<QmpDriveStats>> BlockStatsAsync(CancellationToken ct) =>
        QmpBlockStats.Parse(await _qmp.ExecuteAsync(QmpBlockStats.Command, null, ct).ConfigureAwait(false));

    /// <summary>Resumes a stopped VM (<c>cont</c>; QEMU retries the disk requests that stopped it).</summary>
    public async Task ContinueAsync(CancellationToken ct) => await _qmp.ExecuteAsync("cont", null, ct).ConfigureAwait(false);

    /// <summary>Freezes the vCPUs in place (<c>stop</c>).</summary>
    public async Task StopAsync(CancellationToken ct) => await _qmp.ExecuteAsync("stop", null, ct).ConfigureAwait(false);

    /// <summary>Sets the guest's wall clock (agent <c>set-clock</c>) and checks that it stays set (<see cref="GuestClock"/>).</summary>
    public Task<GuestClockSync> SetGuestClockAsync(DateTimeOffset now, CancellationToken ct) => GuestClock.SyncAsync(Agent, now, ct);

    /// <summary>
    /// Boots the VM and waits for the guest agent's hello. The guest may hold at most <paramref name="maxGuestConnections"/>
    /// connections to host listeners; <paramref name="onGuestConnectionRefused"/> hears of each one refused.
    /// </summary>
    public static async Task<WorkspaceVm> BootAsync(string directory, BootAssets assets, string rootDisk, int memoryMiB, int cpus,
        string hostname, bool ephemeral, CancellationToken ct,
        int maxGuestConnections = VsockBackendOptions.DefaultMaxGuestConnections, Action<int>? onGuestConnectionRefused = null,
        IReadOnlyList<VmDisk>? disks = null, string extraKernelArgs = "")
    {
        var layout = new WorkspaceLayout(directory);
        layout.EnsureSocketPathsFit(ProtocolInfo.ReadyPort);
        string readyPath = layout.GuestListener(ProtocolInfo.ReadyPort);
        var spec = new VmSpec
        {
            KernelPath = assets.Kernel.KernelPath,
            InitrdPath = assets.InitrdPath,
            RootDiskPath = rootDisk,
            MemoryMiB = memoryMiB,
            Cpus = cpus,
            Hostname = hostname,
            Ephemeral = ephemeral,
            VhostUserSocketPath = layout.VhostUserSocket,
            QmpSocketPath = layout.QmpSocket,
            SerialLogPath = layout.SerialLog,
            Disks = disks ?? [],
            ExtraKernelArgs = extraKernelArgs,
        };

        using var ready = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        File.Delete(readyPath);
        ready.Bind(new UnixDomainSocketEndPoint(readyPath));
        File.SetUnixFileMode(readyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        ready.Listen(4);

        var backend = NewBackend(spec, layout, maxGuestConnections, onGuestConnectionRefused);
        QemuProcess? qemu = null;
        QmpClient? qmp = null;
        try
        {
            backend.Start();
            qemu = QemuProcess.Start(assets.Qemu.SystemBinary, QemuCommandLine.Build(spec, assets.Accelerator, assets.Qemu), directory);
            var hello = await WaitForHelloAsync(ready, qemu, spec.SerialLogPath, ct).ConfigureAwait(false);
            // QEMU creates the QMP socket with the umask's mode; sockets are 0600 like every state file.
            if (File.Exists(spec.QmpSocketPath)) File.SetUnixFileMode(spec.QmpSocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            // The supervisor follows QEMU's events for the whole boot (docs/ARCHITECTURE.md "Faults"); QEMU serves one QMP client.
            qmp = await QmpClient.ConnectAsync(spec.QmpSocketPath, ct).ConfigureAwait(false);
            return new WorkspaceVm(layout, backend, qemu, qmp, hello) { BootHostname = hostname, CanSnapshot = assets.Accelerator.Accelerator != Accelerator.Kvm, RootDisk = rootDisk };
        }
        catch
        {
            if (qmp is not null) await qmp.DisposeAsync().ConfigureAwait(false);
            if (qemu is not null) await qemu.DisposeAsync().ConfigureAwait(false);
            await backend.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            File.Delete(readyPath);
        }
    }

    /// <summary>
    /// The vsock backend of a VM: it serves the next vhost-user session after one ends in order, since a snapshot unplugs the
    /// device and plugs it back (docs/ARCHITECTURE.md "Snapshots").
    /// </summary>
    private static VhostUserVsockBackend NewBackend(VmSpec spec, WorkspaceLayout layout, int maxGuestConnections, Action<int>? onGuestConnectionRefused) =>
        new(new VsockBackendOptions(spec.VhostUserSocketPath, layout.HybridSocket, ProtocolInfo.GuestCid, AcceptReconnect: true,
            MaxGuestConnections: maxGuestConnections, OnGuestConnectionRefused: onGuestConnectionRefused));

    private static async Task<Hello> WaitForHelloAsync(Socket ready, QemuProcess qemu, string serialLog, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(BootTimeout);
        var helloTask = ReceiveHelloAsync(ready, cts.Token);
        var finished = await Task.WhenAny(helloTask, qemu.Exited).ConfigureAwait(false);
        if (finished == helloTask)
        {
            try { return await helloTask.ConfigureAwait(false); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw MicroagentException.Transient($"the guest did not become ready within {BootTimeout.TotalSeconds:0} s",
                    $"see the serial log for what the guest printed:\n{Tail(serialLog)}");
            }
        }
        await cts.CancelAsync().ConfigureAwait(false);
        int code = await qemu.Exited.ConfigureAwait(false);
        throw MicroagentException.Permanent($"the VM exited (QEMU status {code}) before the guest agent became ready. {qemu.Stderr.Trim()}",
            $"guest serial log tail:\n{Tail(serialLog)}");
    }

    private static async Task<Hello> ReceiveHelloAsync(Socket ready, CancellationToken ct)
    {
        while (true)
        {
            using var conn = await ready.AcceptAsync(ct).ConfigureAwait(false);
            await using var stream = new NetworkStream(conn, ownsSocket: false);
            try
            {
                var msg = await Frame.ReadAsync(stream, ProtocolJson.Default.Response, ct).ConfigureAwait(false);
                if (msg is { Type: ResponseTypes.Hello, Hello: { } hello }) return hello;
            }
            catch (ProtocolException) { /* a guest that lies on the ready port is ignored; keep waiting */ }
        }
    }

    /// <summary>Last lines of the serial log, for error messages.</summary>
    public static string Tail(string serialLog, int lines = 20)
    {
        try
        {
            if (!File.Exists(serialLog)) return "(no serial output)";
            var all = File.ReadAllLines(serialLog);
            return all.Length == 0 ? "(no serial output)" : string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException) { return "(serial log unreadable)"; }
    }

    /// <summary>
    /// Asks the guest agent to power off and waits up to <paramref name="window"/> for QEMU to exit; if it has not, asks QEMU
    /// to quit through QMP (it flushes the disk), then kills it. True when the guest powered off within the window.
    /// Invariant: QEMU has exited when this returns (the backend and sockets stay until <see cref="DisposeAsync"/>).
    /// </summary>
    public async Task<bool> ShutdownAsync(TimeSpan window, CancellationToken ct = default)
    {
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            cts.CancelAfter(window);
            if (!_qemu.Exited.IsCompleted)
            {
                try { await Agent.ShutdownAsync(cts.Token).ConfigureAwait(false); }
                catch (Exception e) when (e is MicroagentException or OperationCanceledException or IOException) { }
            }
            try { await _qemu.Exited.WaitAsync(cts.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        bool poweredOff = _qemu.Exited.IsCompleted;
        if (!poweredOff) await QuitThroughQmpAsync().ConfigureAwait(false);
        await _qemu.StopAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        return poweredOff;
    }

    /// <summary>The guest did not power off in time: ask QEMU itself to quit (QMP), before SIGKILL.</summary>
    private async Task QuitThroughQmpAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _qmp.ExecuteAsync("quit", null, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MicroagentException or OperationCanceledException or IOException) { }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _qemu.DisposeAsync().ConfigureAwait(false);
        SettleDisk();
        await _qmp.DisposeAsync().ConfigureAwait(false);
        await _backend.DisposeAsync().ConfigureAwait(false);
        foreach (string f in new[] { _layout.VhostUserSocket, _layout.HybridSocket, _layout.QmpSocket })
            File.Delete(f);
    }
}
