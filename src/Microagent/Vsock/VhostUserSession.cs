using System.Buffers.Binary;
using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// One vhost-user front-end connection (QEMU docs/interop/vhost-user.rst): feature negotiation, the memory table and
/// the per-queue state (<see cref="VhostUserQueue"/>) of the vsock device's rx and tx queues; the event queue stays
/// with QEMU. <see cref="ReadMessages"/> runs on the accepting thread and reads the socket with recvmsg only
/// (descriptors arrive as SCM_RIGHTS); every other member runs on the device loop. Disposing ends the session:
/// rings stop, descriptors close, guest memory is unmapped and the device forgets its connections, so a later
/// session can attach to the same device and muxer.
/// </summary>
internal sealed class VhostUserSession : IDisposable
{
    private const ulong OfferedFeatures = VhostUserConstants.VirtioFVersion1 | VhostUserConstants.ProtocolFeaturesBit;
    private const ulong OfferedProtocolFeatures = VhostUserConstants.ProtocolFConfig;

    private readonly SafeFileDescriptor _socket;
    private readonly VsockDevice _device;
    private readonly ulong _guestCid;
    private readonly Action<Action> _post;
    private readonly Action<string> _log;
    private readonly VhostUserQueue[] _queues;
    private GuestMemoryMap? _memory;
    private ulong _ackedFeatures;
    private volatile bool _disposed;

    /// <summary>Takes ownership of the connected <paramref name="socket"/>; <paramref name="post"/> runs an action on the device loop.</summary>
    public VhostUserSession(SafeFileDescriptor socket, VsockDevice device, ulong guestCid, Action<Action> post, Action<string> log)
    {
        _socket = socket;
        _device = device;
        _guestCid = guestCid;
        _post = post;
        _log = log;
        _queues = [new VhostUserQueue(VsockDevice.RxQueue, device.Rx, "rx"), new VhostUserQueue(VsockDevice.TxQueue, device.Tx, "tx")];
    }

    /// <summary>The device-handled queues, by index (rx, tx).</summary>
    public IReadOnlyList<VhostUserQueue> Queues => _queues;

    /// <summary>Names of the queues set up and not stopped ("rx, tx"); null when none: the front-end may close the connection now.</summary>
    public string? RunningQueues
    {
        get
        {
            var running = _queues.Where(q => q.Started).Select(q => q.Name).ToArray();
            return running.Length == 0 ? null : string.Join(", ", running);
        }
    }

    private bool ProtocolFeaturesAcked => (_ackedFeatures & VhostUserConstants.ProtocolFeaturesBit) != 0;

    // ---- reading (accepting thread) ------------------------------------------------------------------

    /// <summary>
    /// Reads messages until the stream ends and hands each to <paramref name="onMessage"/> in order. Returns null when
    /// the front-end closed the connection (or <see cref="Shutdown"/> was called), else why reading stopped (a malformed
    /// header, a socket error).
    /// </summary>
    public string? ReadMessages(Action<VhostUserMessage> onMessage)
    {
        var header = new byte[VhostUserHeader.Length];
        var fds = new List<SafeFileDescriptor>(SocketMessages.MaxFds);
        try
        {
            while (true)
            {
                fds.Clear();
                if (!ReceiveExactly(header, fds, out bool truncated)) return null;
                var h = VhostUserHeader.Read(header);
                if (truncated || h.Version != 1 || h.Size > VhostUserConstants.MaxPayload)
                {
                    DisposeAll(fds);
                    return $"bad message header (request {(uint)h.Request}, flags 0x{h.Flags:x}, size {h.Size}{(truncated ? ", descriptors truncated" : "")})";
                }
                var payload = new byte[h.Size];
                if (!ReceiveExactly(payload, null, out _)) { DisposeAll(fds); return null; }
                onMessage(new VhostUserMessage(h, payload, fds.ToArray()));
            }
        }
        catch (Exception e) when (e is SyscallException or ObjectDisposedException)
        {
            DisposeAll(fds);
            return _disposed ? null : $"vhost-user socket: {e.Message}";
        }
    }

    /// <summary>Fills <paramref name="buffer"/>, collecting descriptors into <paramref name="fds"/> (null: none expected); false at end of stream.</summary>
    private bool ReceiveExactly(Span<byte> buffer, List<SafeFileDescriptor>? fds, out bool truncated)
    {
        int done = 0;
        truncated = false;
        while (done < buffer.Length)
        {
            int n = SocketMessages.Receive(_socket, buffer[done..], fds, out bool t);
            truncated |= t;
            if (n == 0)
            {
                if (fds is not null) DisposeAll(fds);
                return false;
            }
            done += n;
        }
        return true;
    }

    private static void DisposeAll(List<SafeFileDescriptor> fds)
    {
        foreach (var fd in fds) fd.Dispose();
        fds.Clear();
    }

    /// <summary>Wakes <see cref="ReadMessages"/> (shutdown(2) of the socket); callable from any thread.</summary>
    public void Shutdown() => SocketMessages.Shutdown(_socket, SocketMessages.SHUT_RDWR);

    // ---- handling (device loop) ----------------------------------------------------------------------

    /// <summary>Signals the call eventfd of <paramref name="queue"/>.</summary>
    public void Notify(int queue)
    {
        if (queue < _queues.Length) _queues[queue].Notify();
    }

    /// <summary>Handles one message; throws <see cref="VhostUserProtocolException"/> or <see cref="VirtqueueException"/> on a violation.</summary>
    public void Handle(VhostUserMessage m)
    {
        try { Dispatch(m); }
        finally { m.DisposeFds(); }
    }

    private void Dispatch(VhostUserMessage m)
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
                HandleSetMemTable(m);
                break;
            case VhostUserRequest.SetVringNum:
            {
                var (index, num) = m.ReadVringState();
                Queue(index)?.Ring.SetSize(num);
                break;
            }
            case VhostUserRequest.SetVringBase:
            {
                var (index, num) = m.ReadVringState();
                // A ring restarted from 0 is a fresh device (the driver reset it, and the guest dropped its sockets): drop ours. A
                // ring restarted where GET_VRING_BASE left it is the same device after a VM stop (QEMU stops vhost rings on
                // every pause, e.g. a full host disk): connections continue (docs/ARCHITECTURE.md "Faults").
                if (num == 0 && !_device.Rx.HasAddresses && !_device.Tx.HasAddresses) _device.AbortAll();
                if (Queue(index) is { } q) q.Ring.LastAvailIndex = (ushort)num;
                break;
            }
            case VhostUserRequest.SetVringAddr:
            {
                var a = m.ReadVringAddress();
                if (Queue(a.Index) is { } q)
                {
                    q.SetAddress(a);
                    ApplyRingAddress(q);
                    UpdateRunning();
                }
                break;
            }
            case VhostUserRequest.GetVringBase:
                HandleGetVringBase(m);
                break;
            case VhostUserRequest.SetVringKick:
            case VhostUserRequest.SetVringCall:
            case VhostUserRequest.SetVringErr:
                HandleVringFd(m);
                break;
            case VhostUserRequest.SetVringEnable:
            {
                var (index, num) = m.ReadVringState();
                if (Queue(index) is { } q) { q.Enabled = num != 0; UpdateRunning(); }
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

    /// <summary>The device-handled queue for <paramref name="index"/>; null for the event queue (QEMU keeps it); protocol error beyond.</summary>
    private VhostUserQueue? Queue(uint index) => index switch
    {
        VsockDevice.RxQueue or VsockDevice.TxQueue => _queues[index],
        VsockDevice.EventQueue => null,
        _ => throw new VhostUserProtocolException($"queue index {index} out of range"),
    };

    private void Reply(VhostUserRequest request, ReadOnlySpan<byte> payload) =>
        SocketMessages.SendAll(_socket, VhostUserMessage.EncodeReply(request, payload));

    private void ReplyU64(VhostUserRequest request, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Reply(request, b);
    }

    private void HandleGetConfig(VhostUserMessage m)
    {
        var (offset, size, flags) = m.ReadConfigRequest();
        if (size > 256) throw new VhostUserProtocolException($"GET_CONFIG of {size} bytes");
        var reply = new byte[12 + size];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(4), size);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(8), flags);
        Span<byte> config = stackalloc byte[8]; // struct virtio_vsock_config { le64 guest_cid; }
        BinaryPrimitives.WriteUInt64LittleEndian(config, _guestCid);
        for (uint i = 0; i < size; i++)
            if (offset + i < 8) reply[12 + i] = config[(int)(offset + i)];
        Reply(m.Header.Request, reply);
    }

    private void HandleSetMemTable(VhostUserMessage m)
    {
        GuestMemoryMap map;
        try { map = GuestMemoryMap.Map(m.ReadMemoryTable(), m.TakeAllFds()); }
        catch (SyscallException e) { throw new VhostUserProtocolException($"cannot map guest memory: {e.Message}"); }
        _device.Memory = null;
        _memory?.Dispose();
        _memory = map;
        _device.Memory = map;
        foreach (var q in _queues)
            if (q.Ring.HasAddresses) ApplyRingAddress(q);
        UpdateRunning();
    }

    private void ApplyRingAddress(VhostUserQueue q)
    {
        if (q.Address is not { } a) return;
        if (_memory is null) throw new VhostUserProtocolException("SET_VRING_ADDR before SET_MEM_TABLE");
        if (!_memory.TryTranslateUserAddress(a.Descriptor, out ulong desc)
            || !_memory.TryTranslateUserAddress(a.Available, out ulong avail)
            || !_memory.TryTranslateUserAddress(a.Used, out ulong used))
            throw new VhostUserProtocolException($"ring {q.Index} addresses are outside the memory table");
        q.Ring.SetAddresses(_memory, desc, avail, used);
    }

    private void HandleGetVringBase(VhostUserMessage m)
    {
        var (index, _) = m.ReadVringState();
        var q = Queue(index);
        Span<byte> reply = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, index);
        BinaryPrimitives.WriteUInt32LittleEndian(reply[4..], q?.Ring.LastAvailIndex ?? 0);
        if (q is not null)
        {
            q.Stop(enabledAfter: !ProtocolFeaturesAcked);
            UpdateRunning(); // connections are kept: a reset shows when the ring restarts from 0 (SET_VRING_BASE)
        }
        Reply(m.Header.Request, reply);
    }

    private void HandleVringFd(VhostUserMessage m)
    {
        ulong u = m.ReadU64();
        int index = (int)(u & VhostUserConstants.VringIndexMask);
        bool noFd = (u & VhostUserConstants.VringNoFd) != 0;
        if (!noFd && m.FdCount != 1) throw new VhostUserProtocolException($"{m.Header.Request} without exactly one descriptor");
        if (index > VsockDevice.EventQueue) throw new VhostUserProtocolException($"queue index {index} out of range");
        if (index == VsockDevice.EventQueue) return; // the event queue belongs to QEMU; the descriptor is closed.
        var q = _queues[index];
        SafeFileDescriptor? fd = noFd ? null : m.TakeFd(0);
        switch (m.Header.Request)
        {
            case VhostUserRequest.SetVringCall:
                q.SetCall(fd);
                return;
            case VhostUserRequest.SetVringErr:
                q.SetErr(fd);
                return;
        }
        if (fd is null)
        {
            q.SetKick(null);
            _log($"vhost-user: queue {index} has no kick descriptor (polling is not supported); it runs only on other events");
        }
        else
        {
            q.SetKick(new KickWatcher(fd, index, _post, index == VsockDevice.RxQueue ? _device.ProcessRx : _device.ProcessTx));
        }
        if (!ProtocolFeaturesAcked) q.Enabled = true; // without PROTOCOL_FEATURES a ring starts on its kick.
        UpdateRunning();
    }

    private void UpdateRunning()
    {
        bool rx = _queues[0].Enabled && _device.Rx.HasAddresses && _memory is not null;
        bool tx = _queues[1].Enabled && _device.Tx.HasAddresses && _memory is not null;
        _device.RxRunning = rx;
        _device.TxRunning = tx;
        if (tx) _device.ProcessTx();
        if (rx) _device.ProcessRx();
    }

    /// <summary>Ends the session (device loop): connections dropped, rings stopped, descriptors closed, memory unmapped.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _device.AbortAll();
        _device.RxRunning = false;
        _device.TxRunning = false;
        foreach (var q in _queues) q.Dispose();
        _device.Memory = null;
        _memory?.Dispose();
        _memory = null;
        Shutdown();
        _socket.Dispose();
    }
}
