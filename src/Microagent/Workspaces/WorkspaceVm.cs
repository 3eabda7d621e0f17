using System.Diagnostics;
using System.Net.Sockets;
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
public sealed class WorkspaceVm : IAsyncDisposable
{
    /// <summary>Longest a boot may take before it is declared failed (TCG on a loaded 2-core machine is slow).</summary>
    public static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(90);

    private readonly VhostUserVsockBackend _backend;
    private readonly QemuProcess _qemu;
    private int _disposed;

    private WorkspaceVm(string directory, VhostUserVsockBackend backend, QemuProcess qemu, Hello hello, string hybridSocket)
    {
        Directory = directory;
        _backend = backend;
        _qemu = qemu;
        Hello = hello;
        HybridSocketPath = hybridSocket;
        Agent = new AgentClient(ct => HybridVsock.ConnectAsync(hybridSocket, ProtocolInfo.AgentPort, ct));
    }

    /// <summary>The workspace directory holding sockets and logs.</summary>
    public string Directory { get; }

    /// <summary>What the agent reported when it became ready.</summary>
    public Hello Hello { get; }

    /// <summary>Client for the guest agent.</summary>
    public AgentClient Agent { get; }

    /// <summary>Host side of the hybrid vsock: connect here and write <c>CONNECT port</c>.</summary>
    public string HybridSocketPath { get; }

    /// <summary>QEMU's process id.</summary>
    public int QemuPid => _qemu.Pid;

    /// <summary>vsock connections opened so far through the backend (either direction).</summary>
    public long ConnectionsOpened => _backend.ConnectionsOpened;

    /// <summary>vsock connections open now.</summary>
    public int ActiveConnections => _backend.ActiveConnections;

    /// <summary>Completes when QEMU exits.</summary>
    public Task<int> Exited => _qemu.Exited;

    /// <summary>Paths of the files of a VM inside its workspace directory.</summary>
    public static class Files
    {
        /// <summary>vhost-user socket QEMU connects to.</summary>
        public const string VhostUser = "vhost-user.sock";
        /// <summary>Hybrid vsock socket (host side).</summary>
        public const string Vsock = "vsock.sock";
        /// <summary>QMP socket.</summary>
        public const string Qmp = "qmp.sock";
        /// <summary>Guest serial console log.</summary>
        public const string SerialLog = "serial.log";
    }

    /// <summary>Boots the VM and waits for the guest agent's hello.</summary>
    public static async Task<WorkspaceVm> BootAsync(string directory, BootAssets assets, string rootDisk, int memoryMiB, int cpus,
        string hostname, bool ephemeral, CancellationToken ct)
    {
        string hybrid = Path.Combine(directory, Files.Vsock);
        string readyPath = $"{hybrid}_{ProtocolInfo.ReadyPort}";
        if (readyPath.Length >= 108)
            throw MicroagentException.Invalid($"workspace path is too long for a unix socket ({readyPath.Length} bytes, limit 107): {directory}",
                "use a shorter --state-dir");
        var spec = new VmSpec
        {
            KernelPath = assets.Kernel.KernelPath,
            InitrdPath = assets.InitrdPath,
            RootDiskPath = rootDisk,
            MemoryMiB = memoryMiB,
            Cpus = cpus,
            Hostname = hostname,
            Ephemeral = ephemeral,
            VhostUserSocketPath = Path.Combine(directory, Files.VhostUser),
            QmpSocketPath = Path.Combine(directory, Files.Qmp),
            SerialLogPath = Path.Combine(directory, Files.SerialLog),
        };

        using var ready = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        File.Delete(readyPath);
        ready.Bind(new UnixDomainSocketEndPoint(readyPath));
        File.SetUnixFileMode(readyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        ready.Listen(4);

        var backend = new VhostUserVsockBackend(new VsockBackendOptions(spec.VhostUserSocketPath, hybrid, ProtocolInfo.GuestCid));
        QemuProcess? qemu = null;
        try
        {
            backend.Start();
            qemu = QemuProcess.Start(assets.Qemu.SystemBinary, QemuCommandLine.Build(spec, assets.Accelerator, assets.Qemu), directory);
            var hello = await WaitForHelloAsync(ready, qemu, spec.SerialLogPath, ct).ConfigureAwait(false);
            // QEMU creates the QMP socket with the umask's mode; sockets are 0600 like every state file.
            if (File.Exists(spec.QmpSocketPath)) File.SetUnixFileMode(spec.QmpSocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return new WorkspaceVm(directory, backend, qemu, hello, hybrid);
        }
        catch
        {
            if (qemu is not null) await qemu.DisposeAsync().ConfigureAwait(false);
            await backend.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            File.Delete(readyPath);
        }
    }

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

    /// <summary>Asks the guest to power off; kills QEMU if it has not exited within <paramref name="grace"/>.</summary>
    public async Task ShutdownAsync(TimeSpan grace, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        if (!_qemu.Exited.IsCompleted)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(grace);
            try { await Agent.ShutdownAsync(cts.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is MicroagentException or OperationCanceledException or IOException) { }
        }
        var left = grace - sw.Elapsed;
        if (await Task.WhenAny(_qemu.Exited, Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero, ct)).ConfigureAwait(false) != _qemu.Exited)
            await QuitThroughQmpAsync().ConfigureAwait(false);
        await _qemu.StopAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
    }

    /// <summary>The guest did not power off in time: ask QEMU itself to quit (QMP), before SIGKILL.</summary>
    private async Task QuitThroughQmpAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await using var qmp = await QmpClient.ConnectAsync(Path.Combine(Directory, Files.Qmp), cts.Token).ConfigureAwait(false);
            await qmp.ExecuteAsync("quit", null, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MicroagentException or OperationCanceledException or IOException) { }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _qemu.DisposeAsync().ConfigureAwait(false);
        await _backend.DisposeAsync().ConfigureAwait(false);
        foreach (string f in new[] { Files.VhostUser, Files.Vsock, Files.Qmp })
            File.Delete(Path.Combine(Directory, f));
    }
}
