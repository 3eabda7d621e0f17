using System.Buffers;

namespace Microagent.Vsock;

/// <summary>Starts guest-initiated connects to the host side; the result comes back through <see cref="VsockDevice.OnHostConnected"/>.</summary>
internal interface IHostConnector
{
    /// <summary>Connects the unix listener for host port <paramref name="port"/> asynchronously.</summary>
    void Connect(VsockConnection connection, uint port);
}

/// <summary>
/// The socket device (virtio spec 1.2 §5.10): consumes the tx queue, fills the rx queue, and multiplexes
/// connections. Every member runs on the single device loop thread. Bounded state: at most
/// <see cref="MaxConnections"/> connections, of which at most <c>maxGuestConnections</c> opened by the guest (the cap that
/// keeps a hostile guest from growing the host: further guest requests get OP_RST, a clean refusal), each holding at most one host chunk and at most
/// <see cref="VsockConnection.BufferAlloc"/> guest bytes; at most <see cref="MaxPendingResets"/> resets for
/// unknown connections are queued (further ones are dropped; the guest retries or times out).
/// </summary>
internal sealed class VsockDevice
{
    /// <summary>Queue indices (virtio spec 5.10.2).</summary>
    public const int RxQueue = 0, TxQueue = 1, EventQueue = 2;
    /// <summary>Most simultaneous connections; further requests are reset.</summary>
    public const int MaxConnections = 1024;
    /// <summary>Most queued resets for packets that match no connection.</summary>
    public const int MaxPendingResets = 256;
    /// <summary>First host port handed to host-initiated connections (as Firecracker does, 2^30 upwards).</summary>
    public const uint FirstEphemeralPort = 1u << 30;

    private readonly ulong _guestCid;
    private readonly IHostConnector _connector;
    private readonly Action<int> _notify;
    private readonly Action<string> _log;
    private readonly int _maxGuestConnections;
    private readonly Action<int>? _onGuestRefused;
    private int _guestConnections;
    private readonly Dictionary<(uint Host, uint Guest), VsockConnection> _connections = new();
    private readonly Queue<VsockConnection> _rxPending = new();
    private readonly Queue<VsockPacketHeader> _pendingResets = new();
    private readonly List<DescriptorSegment> _chain = new();
    private readonly byte[] _headerBuffer = new byte[VsockPacketHeader.Size];
    private uint _nextPort = FirstEphemeralPort;

    /// <summary>
    /// Creates the device. <paramref name="notify"/> signals the call eventfd of a queue. At most
    /// <paramref name="maxGuestConnections"/> guest-initiated connections are open at once; each request refused for that
    /// calls <paramref name="onGuestRefused"/> (on the device loop, with the cap) after the OP_RST is queued.
    /// </summary>
    public VsockDevice(ulong guestCid, IHostConnector connector, Action<int> notify, Action<string> log,
        int maxGuestConnections = VsockBackendOptions.DefaultMaxGuestConnections, Action<int>? onGuestRefused = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxGuestConnections, 1);
        _maxGuestConnections = Math.Min(maxGuestConnections, MaxConnections);
        _onGuestRefused = onGuestRefused;
        _guestCid = guestCid;
        _connector = connector;
        _notify = notify;
        _log = log;
    }

    /// <summary>The rx queue (device writes).</summary>
    public SplitVirtqueue Rx { get; } = new();

    /// <summary>The tx queue (driver writes).</summary>
    public SplitVirtqueue Tx { get; } = new();

    /// <summary>Guest memory; null until SET_MEM_TABLE.</summary>
    public IGuestMemory? Memory { get; set; }

    /// <summary>Whether each queue may be processed (enabled, kick fd present).</summary>
    public bool RxRunning { get; set; }

    /// <summary>See <see cref="RxRunning"/>.</summary>
    public bool TxRunning { get; set; }

    /// <summary>Live connections (including closed ones with an RST still queued).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Live guest-initiated connections (counted against the guest connection cap).</summary>
    public int GuestConnectionCount => _guestConnections;

    /// <summary>Guest connection requests refused because the cap was reached.</summary>
    public long GuestConnectionsRefused { get; private set; }

    /// <summary>A hybrid client asked for guest port <paramref name="guestPort"/>; null when the connection table is full.</summary>
    public VsockConnection? ConnectFromHost(uint guestPort, IHostSide host)
    {
        if (_connections.Count >= MaxConnections) return null;
        uint port;
        do { port = _nextPort++; if (_nextPort == 0) _nextPort = FirstEphemeralPort; }
        while (_connections.ContainsKey((port, guestPort)));
        var c = VsockConnection.HostInitiated(_guestCid, port, guestPort, host);
        _connections.Add((port, guestPort), c);
        Schedule(c);
        ProcessRx();
        return c;
    }

    /// <summary>Consumes every available tx chain.</summary>
    public void ProcessTx()
    {
        if (!TxRunning || Memory is null || !Tx.HasAddresses) return;
        bool used = false;
        while (true)
        {
            var r = Tx.TryPop(Memory, _chain, out ushort head);
            if (r == PopResult.Empty) break;
            if (r == PopResult.Chain) HandleTxChain();
            else _log("vsock: malformed tx descriptor chain dropped");
            Tx.PushUsed(Memory, head, 0);
            used = true;
        }
        if (used && Tx.ShouldNotify(Memory)) _notify(TxQueue);
        ProcessRx();
    }

    private void HandleTxChain()
    {
        var memory = Memory!;
        long readable = DescriptorChains.ReadableLength(_chain);
        if (readable < VsockPacketHeader.Size || !DescriptorChains.Gather(memory, _chain, 0, _headerBuffer))
        {
            _log("vsock: tx chain too short for a header or holds writable descriptors; dropped");
            return;
        }
        var h = VsockPacketHeader.Read(_headerBuffer);
        if (h.SrcCid != _guestCid || h.DstCid != VsockConstants.HostCid)
        {
            _log($"vsock: dropped packet from cid {h.SrcCid} to cid {h.DstCid}");
            return;
        }
        if (h.Type != VsockConstants.TypeStream || h.Len > VsockConstants.MaxPacketPayload || readable - VsockPacketHeader.Size < h.Len)
        {
            _log($"vsock: bad packet (type {h.Type}, len {h.Len}, chain {readable}) on {h.SrcPort}->{h.DstPort}; reset");
            if (_connections.TryGetValue((h.DstPort, h.SrcPort), out var bad)) { bad.Reset("bad packet"); Schedule(bad); }
            else QueueReset(h);
            return;
        }
        byte[]? payload = null;
        if (h.Op == VsockOp.Rw && h.Len > 0)
        {
            payload = ArrayPool<byte>.Shared.Rent((int)h.Len);
            DescriptorChains.Gather(memory, _chain, VsockPacketHeader.Size, payload.AsSpan(0, (int)h.Len));
        }
        bool taken = false;
        try { taken = Dispatch(h, payload); }
        finally { if (!taken && payload is not null) ArrayPool<byte>.Shared.Return(payload); }
    }

    private bool Dispatch(in VsockPacketHeader h, byte[]? payload)
    {
        if (_connections.TryGetValue((h.DstPort, h.SrcPort), out var c))
        {
            bool wasOpen = c.State != ConnectionState.Closed;
            bool taken = c.OnGuestPacket(h, payload);
            if (wasOpen && c.ResetReason is { } reason)
                _log($"vsock: connection host:{c.HostPort} guest:{c.GuestPort} reset: {reason}");
            Schedule(c);
            return taken;
        }
        switch (h.Op)
        {
            case VsockOp.Request when _connections.Count < MaxConnections && _guestConnections < _maxGuestConnections:
                var n = VsockConnection.GuestInitiated(_guestCid, h);
                _connections.Add((h.DstPort, h.SrcPort), n);
                _guestConnections++;
                _connector.Connect(n, h.DstPort);
                break;
            case VsockOp.Request:
                QueueReset(h);
                GuestConnectionsRefused++;
                _onGuestRefused?.Invoke(_maxGuestConnections);
                break;
            case VsockOp.Rst:
                break;
            default:
                QueueReset(h);
                break;
        }
        return false;
    }

    private void QueueReset(in VsockPacketHeader h)
    {
        if (h.Op == VsockOp.Rst || _pendingResets.Count >= MaxPendingResets) return;
        _pendingResets.Enqueue(new VsockPacketHeader(VsockConstants.HostCid, _guestCid, h.DstPort, h.SrcPort, 0,
            VsockConstants.TypeStream, VsockOp.Rst, 0, VsockConnection.BufferAlloc, 0));
    }

    /// <summary>The unix connect of a guest-initiated connection finished.</summary>
    public void OnHostConnected(VsockConnection c, IHostSide? host)
    {
        c.OnHostConnected(host);
        Schedule(c);
        ProcessRx();
    }

    /// <summary>A chunk arrived from the unix side.</summary>
    public void OnHostData(VsockConnection c, byte[] buffer, int length) { c.OnHostData(buffer, length); Schedule(c); ProcessRx(); }

    /// <summary>The unix side reached end of stream.</summary>
    public void OnHostEof(VsockConnection c) { c.OnHostEof(); Schedule(c); ProcessRx(); }

    /// <summary>The writer put bytes on the unix side.</summary>
    public void OnHostWritten(VsockConnection c, int count) { c.OnHostWritten(count); Schedule(c); ProcessRx(); }

    /// <summary>The unix side failed.</summary>
    public void OnHostFailed(VsockConnection c, string reason) { c.OnHostFailed(reason); Schedule(c); ProcessRx(); }

    /// <summary>Drops every connection without telling the guest (device stop or reset).</summary>
    public void AbortAll()
    {
        foreach (var c in _connections.Values) c.Abort();
        _connections.Clear();
        _guestConnections = 0;
        _rxPending.Clear();
        _pendingResets.Clear();
    }

    private void Schedule(VsockConnection c)
    {
        if (c.Finished)
        {
            if (_connections.TryGetValue((c.HostPort, c.GuestPort), out var same) && ReferenceEquals(same, c))
            {
                _connections.Remove((c.HostPort, c.GuestPort));
                if (c.OpenedByGuest) _guestConnections--;
            }
            return;
        }
        if (!c.Queued && c.HasRxWork)
        {
            c.Queued = true;
            _rxPending.Enqueue(c);
        }
    }

    private bool HasRxWork()
    {
        if (_pendingResets.Count > 0) return true;
        while (_rxPending.Count > 0 && !_rxPending.Peek().HasRxWork)
        {
            var idle = _rxPending.Dequeue();
            idle.Queued = false;
            Schedule(idle);
        }
        return _rxPending.Count > 0;
    }

    private void WritePacket(IGuestMemory memory, in VsockPacketHeader header, ArraySegment<byte> payload)
    {
        header.Write(_headerBuffer);
        DescriptorChains.Scatter(memory, _chain, 0, _headerBuffer);
        DescriptorChains.Scatter(memory, _chain, VsockPacketHeader.Size, payload);
    }

    /// <summary>Fills available rx buffers with queued packets, round-robin across connections.</summary>
    public void ProcessRx()
    {
        if (!RxRunning || Memory is null || !Rx.HasAddresses) return;
        var memory = Memory;
        bool used = false;
        while (HasRxWork())
        {
            var r = Rx.TryPop(memory, _chain, out ushort head);
            if (r == PopResult.Empty) break;
            used = true;
            long capacity = r == PopResult.Chain ? DescriptorChains.WritableLength(_chain) : -1;
            if (capacity < VsockPacketHeader.Size)
            {
                _log("vsock: malformed or short rx descriptor chain returned unused");
                Rx.PushUsed(memory, head, 0);
                continue;
            }
            VsockPacketHeader header;
            ArraySegment<byte> payload = ArraySegment<byte>.Empty;
            if (_pendingResets.Count > 0)
            {
                header = _pendingResets.Dequeue();
                WritePacket(memory, header, payload);
            }
            else
            {
                var c = _rxPending.Dequeue();
                c.Queued = false;
                int max = (int)Math.Min(capacity - VsockPacketHeader.Size, VsockConstants.MaxPacketPayload);
                bool produced = c.TryNextRxPacket(max, out header, out payload);
                if (produced) WritePacket(memory, header, payload);
                c.OnRxPacketCopied();
                Schedule(c);
                if (!produced) { Rx.PushUsed(memory, head, 0); continue; }
            }
            Rx.PushUsed(memory, head, (uint)(VsockPacketHeader.Size + payload.Count));
        }
        if (used && Rx.ShouldNotify(memory)) _notify(RxQueue);
    }
}
