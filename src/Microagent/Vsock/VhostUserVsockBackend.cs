using System.Buffers.Binary;
using System.Net.Sockets;
using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// vhost-user-vsock device backend (docs/ARCHITECTURE.md "Vsock"): QEMU connects to <see cref="VsockBackendOptions.VhostUserSocketPath"/>
/// and hands over guest memory and virtqueues; guest streams are relayed to unix sockets with Firecracker-style hybrid
/// vsock semantics on <see cref="VsockBackendOptions.HybridSocketPath"/>.
/// One device loop owns the virtqueues, guest memory and connection table; the vhost-user reader thread, kick threads
/// and per-connection socket tasks only post actions to it through a bounded channel.
/// </summary>
public sealed class VhostUserVsockBackend : IAsyncDisposable
{
    private const int EventCapacity = 4096;
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan HostConnectTimeout = TimeSpan.FromSeconds(5);

    private readonly VsockBackendOptions _options;
    private readonly Action<string> _log;
    private readonly Channel<Action> _events = Channel.CreateBounded<Action>(new BoundedChannelOptions(EventCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly VsockDevice _device;
    private readonly KickWatcher?[] _kicks = new KickWatcher?[2];
    private readonly int[] _calls = [-1, -1];
    private readonly bool[] _enabled = new bool[2];
    private readonly VringAddress?[] _ringAddresses = new VringAddress?[2];
    private GuestMemoryMap? _memory;
    private ulong _ackedFeatures;
    private int _vhostListener = -1, _vhostFd = -1;
    private Socket? _hybridListener;
    private Task _loop = Task.CompletedTask;
    private int _started, _disposed;
    private long _connectionsOpened;

    /// <summary>Creates the backend; nothing is bound until <see cref="Start"/>.</summary>
    public VhostUserVsockBackend(VsockBackendOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.GuestCid < 3 || options.GuestCid > uint.MaxValue - 1)
            throw MicroagentException.Invalid($"guest CID {options.GuestCid} is reserved or out of range", "use a CID of 3 or more");
        _options = options;
        _log = log ?? (_ => { });
        _device = new VsockDevice(options.GuestCid, new Connector(this), Notify, _log);
    }

    /// <summary>Completes when QEMU disconnects or the backend is disposed; faults on a fatal protocol error.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Connections opened so far, either direction (a supervisor's idle lease watches it).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>Connections currently open (read without the device loop: a snapshot).</summary>
    public int ActiveConnections => _device.ConnectionCount;

    /// <summary>Binds and listens on both sockets and returns at once; serving runs on background threads.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("already started");
        try
        {
            _vhostListener = UnixSockets.Listen(_options.VhostUserSocketPath, 1);
            File.SetUnixFileMode(_options.VhostUserSocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _hybridListener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _hybridListener.Bind(new UnixDomainSocketEndPoint(_options.HybridSocketPath));
            File.SetUnixFileMode(_options.HybridSocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _hybridListener.Listen(128);
        }
        catch (Exception e)
        {
            CloseListeners();
            throw MicroagentException.Permanent($"cannot listen on the vsock sockets: {e.Message}",
                "check that the workspace directory exists and no stale socket file is left", e);
        }
        _loop = Task.Run(RunLoop);
        new Thread(VhostReader) { IsBackground = true, Name = "vhost-user-vsock" }.Start();
        _ = Task.Run(AcceptHybridClients);
    }

    /// <summary>Stops everything, closes all connections and unlinks the sockets it created.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        if (_vhostListener >= 0) SocketMessages.Shutdown(_vhostListener, SocketMessages.SHUT_RDWR);
        int fd = Volatile.Read(ref _vhostFd);
        if (fd >= 0) SocketMessages.Shutdown(fd, SocketMessages.SHUT_RDWR);
        _hybridListener?.Dispose();
        Post(() => throw new StopLoop());
        try { await _loop.ConfigureAwait(false); } catch { }
        _completion.TrySetResult();
        if (_started != 0)
        {
            TryUnlink(_options.VhostUserSocketPath);
            TryUnlink(_options.HybridSocketPath);
        }
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
        catch (QemuDisconnected) { _log("vhost-user: front-end disconnected"); }
        catch (Exception e)
        {
            fault = e;
            _log($"vhost-user-vsock: device stopped: {e.Message}");
        }
        _events.Writer.TryComplete();
        Teardown();
        if (fault is null) _completion.TrySetResult();
        else _completion.TrySetException(fault is VirtqueueException or VhostUserProtocolException
            ? MicroagentException.Permanent($"vsock device stopped: {fault.Message}", "the guest or QEMU broke the virtio/vhost-user protocol; restart the workspace", fault)
            : fault);
        // Drain actions posted after the stop so that their producers do not wait forever.
        while (_events.Reader.TryRead(out _)) { }
    }

    private void Teardown()
    {
        _stop.Cancel();
        _device.AbortAll();
        for (int q = 0; q < 2; q++)
        {
            _kicks[q]?.Stop();
            _kicks[q] = null;
            FileDescriptors.Close(_calls[q]);
            _calls[q] = -1;
        }
        _device.Memory = null;
        _memory?.Dispose();
        _memory = null;
        int fd = Interlocked.Exchange(ref _vhostFd, -1);
        if (fd >= 0) { SocketMessages.Shutdown(fd, SocketMessages.SHUT_RDWR); FileDescriptors.Close(fd); }
        CloseListeners();
    }

    private void CloseListeners()
    {
        int l = Interlocked.Exchange(ref _vhostListener, -1);
        if (l >= 0) { SocketMessages.Shutdown(l, SocketMessages.SHUT_RDWR); FileDescriptors.Close(l); }
        _hybridListener?.Dispose();
    }

    private static void TryUnlink(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private void Notify(int queue)
    {
        if (queue < 2 && _calls[queue] >= 0) EventFd.TrySignal(_calls[queue]);
    }

    private sealed class QemuDisconnected : Exception;

    // ---- vhost-user front-end connection -------------------------------------------------------------

    private void VhostReader()
    {
        int fd;
        try { fd = UnixSockets.Accept(_vhostListener); }
        catch (Exception e)
        {
            if (!_stop.IsCancellationRequested) Post(() => throw new VhostUserProtocolException($"accept on the vhost-user socket failed: {e.Message}"));
            return;
        }
        Volatile.Write(ref _vhostFd, fd);
        if (_stop.IsCancellationRequested) { SocketMessages.Shutdown(fd, SocketMessages.SHUT_RDWR); }
        _log("vhost-user: front-end connected");
        var header = new byte[VhostUserHeader.Length];
        Span<int> fds = stackalloc int[SocketMessages.MaxFds];
        try
        {
            while (true)
            {
                int fdCount = ReceiveExactly(fd, header, fds, out bool truncated);
                if (fdCount < 0) { Post(() => throw new QemuDisconnected()); return; }
                int[] received = fds[..fdCount].ToArray();
                var h = VhostUserHeader.Read(header);
                if (truncated || h.Version != 1 || h.Size > VhostUserConstants.MaxPayload)
                {
                    foreach (int f in received) FileDescriptors.Close(f);
                    Post(() => throw new VhostUserProtocolException($"bad message header (request {(uint)h.Request}, flags 0x{h.Flags:x}, size {h.Size}{(truncated ? ", descriptors truncated" : "")})"));
                    return;
                }
                var payload = new byte[h.Size];
                if (ReceiveExactly(fd, payload, Span<int>.Empty, out _) < 0)
                {
                    foreach (int f in received) FileDescriptors.Close(f);
                    Post(() => throw new QemuDisconnected());
                    return;
                }
                var message = new VhostUserMessage(h, payload, received);
                Post(() => HandleMessage(message));
            }
        }
        catch (Exception e)
        {
            if (_stop.IsCancellationRequested) Post(() => throw new StopLoop());
            else Post(() => throw new VhostUserProtocolException($"vhost-user socket: {e.Message}"));
        }
    }

    /// <summary>Fills <paramref name="buffer"/>; returns the number of descriptors received, or -1 at end of stream.</summary>
    private static int ReceiveExactly(int fd, Span<byte> buffer, Span<int> fds, out bool truncated)
    {
        int done = 0, fdCount = 0;
        truncated = false;
        while (done < buffer.Length)
        {
            int n = SocketMessages.Receive(fd, buffer[done..], fds[fdCount..], out int got, out bool t);
            fdCount += got;
            truncated |= t;
            if (n == 0)
            {
                for (int i = 0; i < fdCount; i++) FileDescriptors.Close(fds[i]);
                return -1;
            }
            done += n;
        }
        return fdCount;
    }

    private void Reply(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        int fd = Volatile.Read(ref _vhostFd);
        if (fd >= 0) SocketMessages.SendAll(fd, VhostUserMessage.EncodeReply(request, payload));
    }

    private void ReplyU64(VhostUserRequest request, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Reply(request, b);
    }

    private const ulong OfferedFeatures = VhostUserConstants.VirtioFVersion1 | VhostUserConstants.ProtocolFeaturesBit;
    private const ulong OfferedProtocolFeatures = VhostUserConstants.ProtocolFConfig;

    private void HandleMessage(VhostUserMessage m)
    {
        int consumedFds = 0;
        try
        {
            switch (m.Header.Request)
            {
                case VhostUserRequest.GetFeatures:
                    ReplyU64(m.Header.Request, OfferedFeatures);
                    break;
                case VhostUserRequest.SetFeatures:
                    _ackedFeatures = m.ReadU64();
                    if ((_ackedFeatures & ~OfferedFeatures) != 0) _log($"vhost-user: front-end acked unoffered features 0x{_ackedFeatures & ~OfferedFeatures:x}; ignored");
                    break;
                case VhostUserRequest.GetProtocolFeatures:
                    ReplyU64(m.Header.Request, OfferedProtocolFeatures);
                    break;
                case VhostUserRequest.SetProtocolFeatures:
                case VhostUserRequest.SetOwner:
                    break;
                case VhostUserRequest.ResetOwner:
                    _device.AbortAll();
                    break;
                case VhostUserRequest.GetConfig:
                    HandleGetConfig(m);
                    break;
                case VhostUserRequest.SetConfig:
                    break; // virtio_vsock_config is read-only.
                case VhostUserRequest.SetMemTable:
                    consumedFds = m.Fds.Length;
                    HandleSetMemTable(m);
                    break;
                case VhostUserRequest.SetVringNum:
                {
                    var (index, num) = m.ReadVringState();
                    if (Queue(index) is { } q) q.SetSize(num);
                    break;
                }
                case VhostUserRequest.SetVringBase:
                {
                    var (index, num) = m.ReadVringState();
                    if (Queue(index) is { } q) q.LastAvailIndex = (ushort)num;
                    break;
                }
                case VhostUserRequest.SetVringAddr:
                {
                    var a = m.ReadVringAddress();
                    if (Queue(a.Index) is { } q)
                    {
                        _ringAddresses[a.Index] = a;
                        ApplyRingAddress((int)a.Index, q);
                        UpdateRunning();
                    }
                    break;
                }
                case VhostUserRequest.GetVringBase:
                {
                    var (index, _) = m.ReadVringState();
                    var q = Queue(index);
                    Span<byte> reply = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt32LittleEndian(reply, index);
                    BinaryPrimitives.WriteUInt32LittleEndian(reply[4..], q?.LastAvailIndex ?? 0);
                    if (q is not null)
                    {
                        q.Reset();
                        _ringAddresses[index] = null;
                        _kicks[index]?.Stop();
                        _kicks[index] = null;
                        _enabled[index] = !ProtocolFeaturesAcked;
                        UpdateRunning();
                        if (!_device.Rx.HasAddresses && !_device.Tx.HasAddresses) _device.AbortAll(); // the driver reset the device.
                    }
                    Reply(m.Header.Request, reply);
                    break;
                }
                case VhostUserRequest.SetVringKick:
                case VhostUserRequest.SetVringCall:
                case VhostUserRequest.SetVringErr:
                    consumedFds = m.Fds.Length;
                    HandleVringFd(m);
                    break;
                case VhostUserRequest.SetVringEnable:
                {
                    var (index, num) = m.ReadVringState();
                    if (Queue(index) is not null) { _enabled[index] = num != 0; UpdateRunning(); }
                    break;
                }
                case VhostUserRequest.GetQueueNum:
                    ReplyU64(m.Header.Request, 2);
                    break;
                default:
                    _log($"vhost-user: ignoring unsupported request {(uint)m.Header.Request}");
                    break;
            }
        }
        finally
        {
            for (int i = consumedFds; i < m.Fds.Length; i++) FileDescriptors.Close(m.Fds[i]);
        }
    }

    private bool ProtocolFeaturesAcked => (_ackedFeatures & VhostUserConstants.ProtocolFeaturesBit) != 0;

    /// <summary>The device-handled queue for <paramref name="index"/>; null for the event queue (QEMU keeps it); protocol error beyond.</summary>
    private SplitVirtqueue? Queue(uint index) => index switch
    {
        VsockDevice.RxQueue => _device.Rx,
        VsockDevice.TxQueue => _device.Tx,
        VsockDevice.EventQueue => null,
        _ => throw new VhostUserProtocolException($"queue index {index} out of range"),
    };

    private void HandleGetConfig(VhostUserMessage m)
    {
        var (offset, size, flags) = m.ReadConfigRequest();
        if (size > 256) throw new VhostUserProtocolException($"GET_CONFIG of {size} bytes");
        var reply = new byte[12 + size];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(4), size);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(8), flags);
        Span<byte> config = stackalloc byte[8]; // struct virtio_vsock_config { le64 guest_cid; }
        BinaryPrimitives.WriteUInt64LittleEndian(config, _options.GuestCid);
        for (uint i = 0; i < size; i++)
            if (offset + i < 8) reply[12 + i] = config[(int)(offset + i)];
        Reply(m.Header.Request, reply);
    }

    private void HandleSetMemTable(VhostUserMessage m)
    {
        GuestMemoryMap map;
        try { map = GuestMemoryMap.Map(m.ReadMemoryTable(), m.Fds); }
        catch (SyscallException e) { throw new VhostUserProtocolException($"cannot map guest memory: {e.Message}"); }
        _device.Memory = null;
        _memory?.Dispose();
        _memory = map;
        _device.Memory = map;
        for (int i = 0; i < 2; i++)
        {
            var q = Queue((uint)i)!;
            if (q.HasAddresses) ApplyRingAddress(i, q);
        }
        UpdateRunning();
    }

    private void ApplyRingAddress(int index, SplitVirtqueue q)
    {
        if (_ringAddresses[index] is not { } a) return;
        if (_memory is null) throw new VhostUserProtocolException("SET_VRING_ADDR before SET_MEM_TABLE");
        if (!_memory.TryTranslateUserAddress(a.Descriptor, out ulong desc)
            || !_memory.TryTranslateUserAddress(a.Available, out ulong avail)
            || !_memory.TryTranslateUserAddress(a.Used, out ulong used))
            throw new VhostUserProtocolException($"ring {index} addresses are outside the memory table");
        q.SetAddresses(_memory, desc, avail, used);
    }

    private void HandleVringFd(VhostUserMessage m)
    {
        ulong u = m.ReadU64();
        int index = (int)(u & VhostUserConstants.VringIndexMask);
        bool noFd = (u & VhostUserConstants.VringNoFd) != 0;
        int fd = -1;
        if (!noFd)
        {
            if (m.Fds.Length != 1) throw new VhostUserProtocolException($"{m.Header.Request} without exactly one descriptor");
            fd = m.Fds[0];
        }
        for (int i = 1; i < m.Fds.Length; i++) FileDescriptors.Close(m.Fds[i]);
        if (index > VsockDevice.EventQueue) { FileDescriptors.Close(fd); throw new VhostUserProtocolException($"queue index {index} out of range"); }
        if (index == VsockDevice.EventQueue || m.Header.Request == VhostUserRequest.SetVringErr)
        {
            FileDescriptors.Close(fd); // errors are never reported; the event queue belongs to QEMU.
            return;
        }
        if (m.Header.Request == VhostUserRequest.SetVringCall)
        {
            FileDescriptors.Close(_calls[index]);
            _calls[index] = fd;
            return;
        }
        _kicks[index]?.Stop();
        _kicks[index] = null;
        if (fd < 0) _log($"vhost-user: queue {index} has no kick descriptor (polling is not supported); it runs only on other events");
        else
        {
            int q = index;
            _kicks[index] = new KickWatcher(fd, index, Post, () => { if (q == VsockDevice.RxQueue) _device.ProcessRx(); else _device.ProcessTx(); }, _log);
        }
        if (!ProtocolFeaturesAcked) _enabled[index] = true; // without PROTOCOL_FEATURES a ring starts on its kick.
        UpdateRunning();
    }

    private void UpdateRunning()
    {
        bool rx = _enabled[0] && _device.Rx.HasAddresses && _memory is not null;
        bool tx = _enabled[1] && _device.Tx.HasAddresses && _memory is not null;
        _device.RxRunning = rx;
        _device.TxRunning = tx;
        if (tx) _device.ProcessTx();
        if (rx) _device.ProcessRx();
    }

    // ---- hybrid (unix) side --------------------------------------------------------------------------

    private async Task AcceptHybridClients()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _hybridListener!.AcceptAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (!_stop.IsCancellationRequested) _log($"vsock: hybrid listener failed: {e.Message}");
                return;
            }
            _ = Task.Run(() => HandleHybridClient(client));
        }
    }

    private async Task HandleHybridClient(Socket client)
    {
        string? line;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(HandshakeTimeout);
            line = await HybridVsock.ReadLineAsync(client, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception) { client.Dispose(); return; }
        if (line is null || !HybridVsock.TryParseConnect(line, out uint port))
        {
            _log($"vsock: hybrid client sent a bad handshake line");
            client.Dispose();
            return;
        }
        Interlocked.Increment(ref _connectionsOpened);
        var side = new UnixHostSide(client, PostAsync);
        try
        {
            await PostAsync(d =>
            {
                var c = d.ConnectFromHost(port, side);
                if (c is null) { _log("vsock: connection table full; hybrid client refused"); side.Abort(); }
                else side.Attach(c);
            }).ConfigureAwait(false);
        }
        catch (ChannelClosedException) { side.Abort(); }
    }

    private sealed class Connector(VhostUserVsockBackend owner) : IHostConnector
    {
        public void Connect(VsockConnection connection, uint port)
        {
            string path = $"{owner._options.HybridSocketPath}_{port}";
            Interlocked.Increment(ref owner._connectionsOpened);
            _ = Task.Run(async () =>
            {
                Socket? s = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(owner._stop.Token);
                    timeout.CancelAfter(HostConnectTimeout);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    s.Dispose();
                    s = null;
                }
                var side = s is null ? null : new UnixHostSide(s, owner.PostAsync);
                try
                {
                    await owner.PostAsync(d =>
                    {
                        side?.Attach(connection);
                        d.OnHostConnected(connection, side);
                    }).ConfigureAwait(false);
                }
                catch (ChannelClosedException) { side?.Abort(); }
            });
        }
    }
}
