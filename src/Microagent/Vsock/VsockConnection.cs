namespace Microagent.Vsock;

/// <summary>Lifecycle of a <see cref="VsockConnection"/>.</summary>
internal enum ConnectionState
{
    /// <summary>Host-initiated: OP_REQUEST queued or sent, waiting for OP_RESPONSE.</summary>
    GuestConnecting,
    /// <summary>Guest-initiated: connecting the unix socket <c>&lt;hybrid&gt;_&lt;port&gt;</c>.</summary>
    HostConnecting,
    /// <summary>Relaying both ways (each direction may be shut down).</summary>
    Established,
    /// <summary>Done; an OP_RST may still be queued for the guest.</summary>
    Closed,
}

/// <summary>
/// One stream connection between a guest port and a host port: its state machine and credit accounting
/// (virtio spec 1.2 §5.10.6.3 "Buffer Space Management"). Owned by the device loop; not thread-safe.
/// Credit invariants: we never send more RW payload than <c>peer_buf_alloc - (tx_cnt - peer_fwd_cnt)</c>;
/// the guest may have at most <see cref="BufferAlloc"/> bytes received but not yet written to the unix side
/// (<c>rx_cnt - fwd_cnt</c>), and a guest that exceeds it is reset. At most one host chunk is held at a time.
/// </summary>
internal sealed class VsockConnection
{
    /// <summary>Our receive buffer advertised as buf_alloc: the most guest data queued for one unix socket.</summary>
    public const uint BufferAlloc = 256 * 1024;

    private readonly ulong _guestCid;
    private bool _needRequest, _requestSent, _needResponse, _needCreditUpdate, _creditRequested, _needRst;
    private byte[]? _chunk;
    private int _chunkOffset, _chunkEnd;
    private uint _peerBufAlloc, _peerFwdCnt, _txCnt, _rxCnt, _fwdCnt, _lastSentFwdCnt;
    private bool _guestShutRcv, _guestShutSend, _hostEof;

    private VsockConnection(ulong guestCid, uint hostPort, uint guestPort, ConnectionState state, IHostSide? host)
    {
        _guestCid = guestCid;
        HostPort = hostPort;
        GuestPort = guestPort;
        State = state;
        Host = host;
    }

    /// <summary>A host client asked to connect to guest port <paramref name="guestPort"/>; OP_REQUEST is queued.</summary>
    public static VsockConnection HostInitiated(ulong guestCid, uint hostPort, uint guestPort, IHostSide host)
        => new(guestCid, hostPort, guestPort, ConnectionState.GuestConnecting, host) { _needRequest = true };

    /// <summary>The guest sent OP_REQUEST; the unix connect is pending.</summary>
    public static VsockConnection GuestInitiated(ulong guestCid, in VsockPacketHeader request)
        => new(guestCid, request.DstPort, request.SrcPort, ConnectionState.HostConnecting, null)
        { _peerBufAlloc = request.BufAlloc, _peerFwdCnt = request.FwdCnt, OpenedByGuest = true };

    /// <summary>The guest opened it (to a host listener: a <c>--vsock</c> mapping or the mediation channel).</summary>
    public bool OpenedByGuest { get; private init; }

    /// <summary>Port on the host (CID 2) side.</summary>
    public uint HostPort { get; }

    /// <summary>Port on the guest side.</summary>
    public uint GuestPort { get; }

    /// <summary>Current state.</summary>
    public ConnectionState State { get; private set; }

    /// <summary>The unix side; null until a guest-initiated connect succeeds.</summary>
    public IHostSide? Host { get; private set; }

    /// <summary>Set by the device while the connection sits in its rx scheduling queue.</summary>
    public bool Queued { get; set; }

    /// <summary>Closed and nothing left to tell the guest: the device forgets the connection.</summary>
    public bool Finished => State == ConnectionState.Closed && !_needRst;

    /// <summary>Bytes the guest can still accept from us.</summary>
    public uint PeerCredit
    {
        get
        {
            uint inFlight = _txCnt - _peerFwdCnt;
            return inFlight >= _peerBufAlloc ? 0 : _peerBufAlloc - inFlight;
        }
    }

    /// <summary>Guest bytes received and not yet written to the unix side.</summary>
    public uint Buffered => _rxCnt - _fwdCnt;

    /// <summary>Why the connection was reset, for logging; null if it was not.</summary>
    public string? ResetReason { get; private set; }

    /// <summary>Handles one guest packet for this connection. Returns true when it took ownership of <paramref name="payload"/>.</summary>
    public bool OnGuestPacket(in VsockPacketHeader h, byte[]? payload)
    {
        if (State == ConnectionState.Closed) return false;
        _peerBufAlloc = h.BufAlloc;
        _peerFwdCnt = h.FwdCnt;
        switch (h.Op)
        {
            case VsockOp.Response:
                if (State != ConnectionState.GuestConnecting || !_requestSent) { Reset("unexpected OP_RESPONSE"); return false; }
                State = ConnectionState.Established;
                Host!.Established(HostPort);
                return false;
            case VsockOp.Rw:
                if (State != ConnectionState.Established || _guestShutSend) { Reset("OP_RW on a connection not open for guest data"); return false; }
                if (h.Len == 0 || payload is null) return false;
                if ((ulong)Buffered + h.Len > BufferAlloc) { Reset($"guest exceeded its credit ({Buffered} + {h.Len} > {BufferAlloc})"); return false; }
                _rxCnt += h.Len;
                Host!.Write(payload, (int)h.Len);
                return true;
            case VsockOp.CreditUpdate:
                _creditRequested = false;
                return false;
            case VsockOp.CreditRequest:
                _needCreditUpdate = true;
                return false;
            case VsockOp.Shutdown:
                if (State != ConnectionState.Established) { Reset("OP_SHUTDOWN before the connection was established"); return false; }
                if ((h.Flags & VsockConstants.ShutdownSend) != 0 && !_guestShutSend)
                {
                    _guestShutSend = true;
                    Host!.ShutdownWrite();
                }
                if ((h.Flags & VsockConstants.ShutdownRcv) != 0 && !_guestShutRcv)
                {
                    _guestShutRcv = true;
                    DropChunk();
                }
                if ((_guestShutRcv && _guestShutSend) || (_guestShutSend && _hostShutSent)) CloseGracefully();
                return false;
            case VsockOp.Rst:
                State = ConnectionState.Closed;
                _needRst = false;
                _chunk = null;
                Host?.Close(abort: true);
                return false;
            default:
                Reset($"unexpected {h.Op} (op {(ushort)h.Op}) on an existing connection");
                return false;
        }
    }

    /// <summary>The guest-initiated unix connect finished (<paramref name="host"/> null on failure).</summary>
    public void OnHostConnected(IHostSide? host)
    {
        if (host is null)
        {
            if (State != ConnectionState.Closed) Reset("no host listener");
            return;
        }
        if (State == ConnectionState.Closed) { host.Close(abort: true); return; }
        Host = host;
        State = ConnectionState.Established;
        _needResponse = true;
        host.Established(null);
    }

    /// <summary>The unix side delivered a chunk; the array stays owned by the reader until <see cref="IHostSide.RequestRead"/>.</summary>
    public void OnHostData(byte[] buffer, int length)
    {
        if (State == ConnectionState.Closed) return;
        if (_guestShutRcv || length <= 0) { Host?.RequestRead(); return; } // the guest will not read: discard.
        _chunk = buffer;
        _chunkOffset = 0;
        _chunkEnd = length;
    }

    /// <summary>The unix side reached end of stream.</summary>
    public void OnHostEof()
    {
        if (State == ConnectionState.Closed) return;
        _hostEof = true;
    }

    /// <summary>The writer put <paramref name="count"/> guest bytes on the unix socket.</summary>
    public void OnHostWritten(int count)
    {
        _fwdCnt += (uint)count;
        if (State != ConnectionState.Closed && _fwdCnt - _lastSentFwdCnt >= BufferAlloc / 4) _needCreditUpdate = true;
    }

    /// <summary>The unix side failed (reset, EPIPE, ...).</summary>
    public void OnHostFailed(string reason)
    {
        if (State != ConnectionState.Closed) Reset(reason);
    }

    /// <summary>Resets the connection: OP_RST to the guest, unix side aborted.</summary>
    public void Reset(string reason)
    {
        if (State == ConnectionState.Closed) return;
        ResetReason = reason;
        State = ConnectionState.Closed;
        _needRst = true;
        _chunk = null;
        Host?.Close(abort: true);
    }

    /// <summary>Device stop: drops everything without telling the guest.</summary>
    public void Abort()
    {
        State = ConnectionState.Closed;
        _needRst = false;
        _chunk = null;
        Host?.Close(abort: true);
    }

    private void CloseGracefully()
    {
        State = ConnectionState.Closed;
        _needRst = true;
        _chunk = null;
        Host?.Close(abort: false);
    }

    private void DropChunk()
    {
        if (_chunk is null) return;
        _chunk = null;
        Host?.RequestRead();
    }

    private enum Next { None, Rst, Request, Response, Data, CreditRequest, Shutdown, CreditUpdate }

    private Next NextPacket()
    {
        if (_needRst) return Next.Rst;
        if (State == ConnectionState.Closed) return Next.None;
        if (_needRequest) return Next.Request;
        if (_needResponse) return Next.Response;
        if (State != ConnectionState.Established) return Next.None;
        if (_chunk is not null)
        {
            if (PeerCredit > 0) return Next.Data;
            if (!_creditRequested) return Next.CreditRequest;
        }
        else if (_hostEof) return Next.Shutdown;
        return _needCreditUpdate ? Next.CreditUpdate : Next.None;
    }

    /// <summary>Whether <see cref="TryNextRxPacket"/> would produce a packet now.</summary>
    public bool HasRxWork => NextPacket() != Next.None;

    /// <summary>
    /// Produces the next packet for the guest with at most <paramref name="maxPayload"/> payload bytes, advancing
    /// the state as if it had been delivered. The payload segment is valid until the next call into this connection.
    /// </summary>
    public bool TryNextRxPacket(int maxPayload, out VsockPacketHeader header, out ArraySegment<byte> payload)
    {
        payload = ArraySegment<byte>.Empty;
        OnRxPacketCopied();
        switch (NextPacket())
        {
            case Next.Rst:
                _needRst = false;
                header = Header(VsockOp.Rst, 0, 0);
                return true;
            case Next.Request:
                _needRequest = false;
                _requestSent = true;
                header = Header(VsockOp.Request, 0, 0);
                return true;
            case Next.Response:
                _needResponse = false;
                header = Header(VsockOp.Response, 0, 0);
                return true;
            case Next.Data when maxPayload > 0:
                int n = (int)Math.Min(Math.Min((uint)(_chunkEnd - _chunkOffset), PeerCredit), (uint)maxPayload);
                payload = new ArraySegment<byte>(_chunk!, _chunkOffset, n);
                _chunkOffset += n;
                _txCnt += (uint)n;
                header = Header(VsockOp.Rw, (uint)n, 0);
                if (_chunkOffset == _chunkEnd)
                {
                    _chunk = null;
                    _readAfterCopy = true; // the reader reuses the array: it may read again only after the payload is copied.
                }
                return true;
            case Next.CreditRequest:
                _creditRequested = true;
                header = Header(VsockOp.CreditRequest, 0, 0);
                return true;
            case Next.Shutdown:
                _hostEof = false; // reported; the flag's job is done.
                if (_guestShutSend)
                {
                    // Both directions are finished: RST completes the close on the guest side (no 8 s timeout there).
                    CloseGracefully();
                    _needRst = false;
                    header = Header(VsockOp.Rst, 0, 0);
                }
                else
                {
                    header = Header(VsockOp.Shutdown, 0, VsockConstants.ShutdownSend);
                    _hostShutSent = true;
                }
                return true;
            case Next.CreditUpdate:
                header = Header(VsockOp.CreditUpdate, 0, 0);
                return true;
            default:
                header = default;
                return false;
        }
    }

    private bool _hostShutSent;
    private bool _readAfterCopy;

    /// <summary>The device finished copying the payload of the last packet from <see cref="TryNextRxPacket"/>.</summary>
    public void OnRxPacketCopied()
    {
        if (!_readAfterCopy) return;
        _readAfterCopy = false;
        if (State != ConnectionState.Closed) Host?.RequestRead();
    }

    /// <summary>Whether we told the guest that the host will send no more (OP_SHUTDOWN SEND).</summary>
    public bool HostShutdownSent => _hostShutSent;

    private VsockPacketHeader Header(VsockOp op, uint len, uint flags)
    {
        _needCreditUpdate = false;
        _lastSentFwdCnt = _fwdCnt;
        return new VsockPacketHeader(VsockConstants.HostCid, _guestCid, HostPort, GuestPort, len, VsockConstants.TypeStream, op, flags, BufferAlloc, _fwdCnt);
    }
}
