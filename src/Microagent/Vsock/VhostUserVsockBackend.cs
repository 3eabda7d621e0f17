using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// vhost-user-vsock device backend (docs/ARCHITECTURE.md "Vsock"): QEMU connects to
/// <see cref="VsockBackendOptions.VhostUserSocketPath"/> and hands over guest memory and virtqueues
/// (<see cref="VhostUserSession"/>); guest streams are relayed to unix sockets with Firecracker-style hybrid vsock
/// semantics on <see cref="VsockBackendOptions.HybridSocketPath"/> (<see cref="HybridMuxer"/>).
/// One device loop owns the virtqueues, guest memory, the session and the connection table; the vhost-user reader
/// thread, kick threads and per-connection socket tasks only post actions to it through a bounded channel.
/// </summary>
/// <remarks>
/// <see cref="Completion"/> contract: it completes normally on <see cref="DisposeAsync"/>, and when the front-end ends
/// the session in order (every started ring stopped with GET_VRING_BASE, or none ever started, then the socket closed)
/// unless <see cref="VsockBackendOptions.AcceptReconnect"/> asks to serve the next session. It faults with a
/// <see cref="MicroagentException"/> whose message says why when the session ends any other way: the front-end closed the
/// socket while a ring was running, a malformed message or header, a socket error, a queue worker throwing.
/// </remarks>
internal sealed class VhostUserVsockBackend : IAsyncDisposable
{
    private const int EventCapacity = 4096;

    private readonly VsockBackendOptions _options;
    private readonly Action<string> _log;
    private readonly Channel<Action> _events = Channel.CreateBounded<Action>(new BoundedChannelOptions(EventCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly VsockDevice _device;
    private readonly HybridMuxer _muxer;
    private SafeFileDescriptor? _vhostListener;
    private VhostUserSession? _session;        // device loop only
    private VhostUserSession? _readingSession; // the accepting thread's, for DisposeAsync to wake it
    private TaskCompletionSource<bool>? _resumeAccept;
    private volatile bool _stopping;
    private Task _loop = Task.CompletedTask;
    private int _started, _disposed;

    /// <summary>Creates the backend; nothing is bound until <see cref="Start"/>.</summary>
    public VhostUserVsockBackend(VsockBackendOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.GuestCid < 3 || options.GuestCid > uint.MaxValue - 1)
            throw MicroagentException.Invalid($"guest CID {options.GuestCid} is reserved or out of range", "use a CID of 3 or more");
        _options = options;
        _log = log ?? (_ => { });
        _muxer = new HybridMuxer(options.HybridSocketPath, PostAsync, _log);
        _device = new VsockDevice(options.GuestCid, _muxer, q => _session?.Notify(q), _log, options.MaxGuestConnections, options.OnGuestConnectionRefused);
    }

    /// <summary>Completes on dispose or an orderly end of the vhost-user session; faults when the session ends unexpectedly (see remarks).</summary>
    public Task Completion => _completion.Task;

    /// <summary>Connections opened so far, either direction (a supervisor's idle lease watches it).</summary>
    public long ConnectionsOpened => _muxer.ConnectionsOpened;

    /// <summary>Connections currently open (read without the device loop: a snapshot).</summary>
    public int ActiveConnections => _device.ConnectionCount;

    /// <summary>Severs guest port <paramref name="port"/> for host clients for the rest of this backend's life (<see cref="HybridMuxer.SeverGuestPort"/>); returns the connections closed.</summary>
    public int SeverGuestPort(uint port) => _muxer.SeverGuestPort(port);

    /// <summary>Whether guest port <paramref name="port"/> was severed.</summary>
    public bool IsSevered(uint port) => _muxer.IsSevered(port);

    /// <summary>Host-initiated connections to guest port <paramref name="port"/> open now.</summary>
    public int OpenToGuestPort(uint port) => _muxer.OpenToGuestPort(port);

    /// <summary>Binds and listens on both sockets and returns at once; serving runs on background threads.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("already started");
        try
        {
            _vhostListener = UnixSockets.Listen(_options.VhostUserSocketPath, 1);
            File.SetUnixFileMode(_options.VhostUserSocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _muxer.Listen();
        }
        catch (Exception e)
        {
            CloseListeners();
            throw MicroagentException.Permanent($"cannot listen on the vsock sockets: {e.Message}",
                "check that the workspace directory exists and no stale socket file is left", e);
        }
        _loop = Task.Run(RunLoop);
        new Thread(AcceptSessions) { IsBackground = true, Name = "vhost-user-vsock" }.Start();
        _muxer.Start();
    }

    /// <summary>Stops everything, closes all connections and unlinks the sockets it created; <see cref="Completion"/> completes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping = true;
        if (_vhostListener is { } l) SocketMessages.Shutdown(l, SocketMessages.SHUT_RDWR);
        Volatile.Read(ref _readingSession)?.Shutdown();
        _muxer.CloseListener();
        Post(() => throw new StopLoop());
        try { await _loop.ConfigureAwait(false); } catch { }
        _completion.TrySetResult();
        _muxer.Dispose();
        if (_started != 0) TryUnlink(_options.VhostUserSocketPath);
    }

    private sealed class StopLoop : Exception;

    private void Post(Action action)
    {
        while (!_events.Writer.TryWrite(action))
        {
            try { if (!_events.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult()) return; }
            catch (ChannelClosedException) { return; }
        }
    }

    private ValueTask PostAsync(Action<VsockDevice> action)
    {
        try { return _events.Writer.WriteAsync(() => action(_device)); }
        catch (ChannelClosedException) { return ValueTask.CompletedTask; }
    }

    private async Task RunLoop()
    {
        Exception? fault = null;
        try
        {
            await foreach (var action in _events.Reader.ReadAllAsync().ConfigureAwait(false))
                action();
        }
        catch (StopLoop) { }
        catch (Exception e)
        {
            fault = e;
            _log($"vhost-user-vsock: device stopped: {e.Message}");
        }
        _events.Writer.TryComplete();
        Teardown();
        if (fault is null) _completion.TrySetResult();
        else _completion.TrySetException(fault switch
        {
            VirtqueueException or VhostUserProtocolException => MicroagentException.Permanent($"vsock device stopped: {fault.Message}",
                "QEMU broke the vhost-user protocol or exited without stopping the device, or the guest broke the virtio protocol; restart the workspace", fault),
            MicroagentException m => m,
            _ => MicroagentException.Permanent($"vsock device failed: {fault.Message}", "restart the workspace", fault),
        });
        // Drain actions posted after the stop so that their producers do not wait forever.
        while (_events.Reader.TryRead(out _)) { }
    }

    private void Teardown()
    {
        _stopping = true;
        _session?.Dispose();
        _session = null;
        _device.AbortAll();
        CloseListeners();
        Volatile.Read(ref _resumeAccept)?.TrySetResult(false);
    }

    private void CloseListeners()
    {
        var l = Interlocked.Exchange(ref _vhostListener, null);
        if (l is not null) { SocketMessages.Shutdown(l, SocketMessages.SHUT_RDWR); l.Dispose(); }
        _muxer.CloseListener();
    }

    private static void TryUnlink(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // ---- vhost-user sessions (accepting thread) -----------------------------------------------------

    /// <summary>Accepts a front-end, reads its session to the end, and accepts the next one only when the loop says so.</summary>
    private void AcceptSessions()
    {
        var listener = _vhostListener!;
        while (true)
        {
            SafeFileDescriptor fd;
            try { fd = UnixSockets.Accept(listener); }
            catch (Exception e) when (e is SyscallException or ObjectDisposedException)
            {
                if (!_stopping) Post(() => throw new VhostUserProtocolException($"accept on the vhost-user socket failed: {e.Message}"));
                return;
            }
            var session = new VhostUserSession(fd, _device, _options.GuestCid, Post, _log);
            var resume = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _resumeAccept, resume);
            Volatile.Write(ref _readingSession, session);
            if (_stopping) session.Shutdown();
            _log("vhost-user: front-end connected");
            Post(() => _session = session);
            string? error = session.ReadMessages(m => Post(() => session.Handle(m)));
            Post(() => EndSession(session, error, resume));
            if (_stopping) resume.TrySetResult(false);
            if (!resume.Task.GetAwaiter().GetResult()) return;
        }
    }

    /// <summary>Device loop: the session's stream ended (<paramref name="error"/> null: the front-end closed it).</summary>
    private void EndSession(VhostUserSession session, string? error, TaskCompletionSource<bool> resume)
    {
        string? running = session.RunningQueues;
        session.Dispose();
        if (ReferenceEquals(_session, session)) _session = null;
        if (_stopping) throw new StopLoop(); // DisposeAsync shut the socket down: an orderly end whatever the rings were doing
        if (error is not null) throw new VhostUserProtocolException(error);
        if (running is not null)
            throw new VhostUserProtocolException($"the vhost-user front-end closed the connection while queue {running} was running (no GET_VRING_BASE)");
        _log("vhost-user: front-end disconnected");
        if (!_options.AcceptReconnect) throw new StopLoop();
        resume.TrySetResult(true);
    }
}
