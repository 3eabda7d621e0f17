using System.Buffers;
using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

internal sealed class FakeHostSide : IHostSide
{
    public List<string> Calls { get; } = new();
    public long Written { get; private set; }
    public int ReadRequests { get; private set; }
    public uint? Announced { get; private set; }

    public void Established(uint? announceHostPort) { Announced = announceHostPort; Calls.Add("established"); }
    public void Write(byte[] pooledBuffer, int length) { Written += length; Calls.Add($"write {length}"); }
    public void ShutdownWrite() => Calls.Add("shutdown-write");
    public void RequestRead() { ReadRequests++; Calls.Add("read"); }
    public void Close(bool abort) => Calls.Add(abort ? "abort" : "close");
}

public class VsockConnectionTests
{
    private const ulong Cid = 3;
    private const uint HostPort = 1u << 30, GuestPort = 5000;

    private static VsockPacketHeader FromGuest(VsockOp op, uint len = 0, uint flags = 0, uint bufAlloc = 64 * 1024, uint fwdCnt = 0)
        => new(Cid, VsockConstants.HostCid, GuestPort, HostPort, len, VsockConstants.TypeStream, op, flags, bufAlloc, fwdCnt);

    private static (VsockConnection, FakeHostSide) Established(uint guestBufAlloc = 64 * 1024)
    {
        var host = new FakeHostSide();
        var c = VsockConnection.HostInitiated(Cid, HostPort, GuestPort, host);
        Assert.True(c.TryNextRxPacket(4096, out var req, out _));
        Assert.Equal(VsockOp.Request, req.Op);
        c.OnGuestPacket(FromGuest(VsockOp.Response, bufAlloc: guestBufAlloc), null);
        return (c, host);
    }

    private static List<VsockPacketHeader> Drain(VsockConnection c, int maxPayload = 4096)
    {
        var packets = new List<VsockPacketHeader>();
        while (c.TryNextRxPacket(maxPayload, out var h, out _)) { packets.Add(h); c.OnRxPacketCopied(); }
        return packets;
    }

    [Fact]
    public void HostInitiatedHandshakeAnnouncesThePort()
    {
        var host = new FakeHostSide();
        var c = VsockConnection.HostInitiated(Cid, HostPort, GuestPort, host);
        Assert.True(c.TryNextRxPacket(4096, out var req, out _));
        Assert.Equal(new VsockPacketHeader(2, Cid, HostPort, GuestPort, 0, 1, VsockOp.Request, 0, VsockConnection.BufferAlloc, 0), req);
        Assert.False(c.HasRxWork);
        c.OnGuestPacket(FromGuest(VsockOp.Response), null);
        Assert.Equal(ConnectionState.Established, c.State);
        Assert.Equal(HostPort, host.Announced);
        Assert.Equal("OK 1073741824\n", System.Text.Encoding.ASCII.GetString(HybridVsock.OkLine(HostPort)));
    }

    [Fact]
    public void GuestRstDuringConnectClosesTheClient()
    {
        var host = new FakeHostSide();
        var c = VsockConnection.HostInitiated(Cid, HostPort, GuestPort, host);
        c.TryNextRxPacket(4096, out _, out _);
        c.OnGuestPacket(FromGuest(VsockOp.Rst), null);
        Assert.True(c.Finished);
        Assert.Equal(["abort"], host.Calls);
    }

    [Fact]
    public void NeverSendsMoreThanThePeersCredit()
    {
        var (c, host) = Established(guestBufAlloc: 10_000);
        c.OnHostData(new byte[50_000], 50_000);
        var packets = Drain(c);
        Assert.Equal([4096, 4096, 1808], packets.Where(p => p.Op == VsockOp.Rw).Select(p => (int)p.Len));
        Assert.Equal(VsockOp.CreditRequest, packets[^1].Op); // stalled: ask once
        Assert.Equal(0u, c.PeerCredit);
        Assert.False(c.HasRxWork);

        c.OnGuestPacket(FromGuest(VsockOp.CreditUpdate, bufAlloc: 10_000, fwdCnt: 6000), null);
        Assert.Equal(6000u, c.PeerCredit);
        packets = Drain(c);
        Assert.Equal(6000, packets.Where(p => p.Op == VsockOp.Rw).Sum(p => (int)p.Len));
        Assert.Equal(0, host.ReadRequests); // chunk not consumed yet
    }

    [Fact]
    public void RequestsTheNextChunkOnlyAfterTheLastPayloadWasCopied()
    {
        var (c, host) = Established();
        c.OnHostData(new byte[100], 100);
        Assert.True(c.TryNextRxPacket(4096, out var h, out var payload));
        Assert.Equal(100, payload.Count);
        Assert.Equal(0, host.ReadRequests);
        c.OnRxPacketCopied();
        Assert.Equal(1, host.ReadRequests);
    }

    [Fact]
    public void GuestThatExceedsOurCreditIsReset()
    {
        var (c, host) = Established();
        var buf = ArrayPool<byte>.Shared.Rent(VsockConstants.MaxPacketPayload);
        for (int i = 0; i < VsockConnection.BufferAlloc / VsockConstants.MaxPacketPayload; i++)
            Assert.True(c.OnGuestPacket(FromGuest(VsockOp.Rw, len: VsockConstants.MaxPacketPayload), buf));
        Assert.Equal(VsockConnection.BufferAlloc, c.Buffered);
        Assert.False(c.OnGuestPacket(FromGuest(VsockOp.Rw, len: 1), buf));
        Assert.Equal(ConnectionState.Closed, c.State);
        Assert.Contains("credit", c.ResetReason);
        Assert.Equal(VsockOp.Rst, Drain(c).Single().Op);
        Assert.True(c.Finished);
        Assert.Equal("abort", host.Calls[^1]);
    }

    [Fact]
    public void AdvertisesCreditAsDataReachesTheHost()
    {
        var (c, host) = Established();
        var buf = new byte[VsockConstants.MaxPacketPayload];
        c.OnGuestPacket(FromGuest(VsockOp.Rw, len: 40_000), buf);
        c.OnGuestPacket(FromGuest(VsockOp.Rw, len: 40_000), buf);
        c.OnHostWritten(40_000);
        Assert.False(c.HasRxWork); // below a quarter of the buffer: no update yet
        c.OnHostWritten(40_000);
        var update = Drain(c).Single();
        Assert.Equal(VsockOp.CreditUpdate, update.Op);
        Assert.Equal(80_000u, update.FwdCnt);
        Assert.Equal(VsockConnection.BufferAlloc, update.BufAlloc);
        Assert.Equal(0u, c.Buffered);
    }

    [Fact]
    public void AnswersCreditRequests()
    {
        var (c, _) = Established();
        c.OnGuestPacket(FromGuest(VsockOp.CreditRequest), null);
        Assert.Equal(VsockOp.CreditUpdate, Drain(c).Single().Op);
    }

    [Fact]
    public void HostEofBecomesShutdownSendThenGuestCloseEndsWithRst()
    {
        var (c, host) = Established();
        c.OnHostData(new byte[10], 10);
        c.OnHostEof();
        var packets = Drain(c);
        Assert.Equal([VsockOp.Rw, VsockOp.Shutdown], packets.Select(p => p.Op));
        Assert.Equal(VsockConstants.ShutdownSend, packets[1].Flags);
        c.OnGuestPacket(FromGuest(VsockOp.Shutdown, flags: VsockConstants.ShutdownSend), null);
        Assert.Equal(ConnectionState.Closed, c.State);
        Assert.Equal(VsockOp.Rst, Drain(c).Single().Op);
        Assert.Equal(["established", "read", "shutdown-write", "close"], host.Calls);
    }

    [Fact]
    public void GuestHalfCloseShutsTheUnixSideForWritingAndKeepsRelayingBack()
    {
        var (c, host) = Established();
        c.OnGuestPacket(FromGuest(VsockOp.Rw, len: 5), new byte[5]);
        c.OnGuestPacket(FromGuest(VsockOp.Shutdown, flags: VsockConstants.ShutdownSend), null);
        Assert.Equal(["established", "write 5", "shutdown-write"], host.Calls);
        Assert.Equal(ConnectionState.Established, c.State);
        c.OnHostData(new byte[7], 7);
        Assert.Equal(7u, Drain(c).Single().Len);
        c.OnHostEof();
        Assert.Equal(VsockOp.Rst, Drain(c).Single().Op); // both directions done
        Assert.True(c.Finished);
        Assert.Equal("close", host.Calls[^1]); // graceful: queued writes drain first
    }

    [Fact]
    public void GuestFullShutdownClosesGracefully()
    {
        var (c, host) = Established();
        c.OnGuestPacket(FromGuest(VsockOp.Shutdown, flags: VsockConstants.ShutdownSend | VsockConstants.ShutdownRcv), null);
        Assert.Equal(VsockOp.Rst, Drain(c).Single().Op);
        Assert.Equal("close", host.Calls[^1]);
    }

    [Fact]
    public void DataAfterGuestShutdownSendAndUnknownOpsReset()
    {
        var (c, _) = Established();
        c.OnGuestPacket(FromGuest(VsockOp.Shutdown, flags: VsockConstants.ShutdownSend), null);
        c.OnGuestPacket(FromGuest(VsockOp.Rw, len: 1), new byte[1]);
        Assert.Equal(VsockOp.Rst, Drain(c).Single().Op);

        var (d, _) = Established();
        d.OnGuestPacket(FromGuest((VsockOp)42), null);
        Assert.Equal(ConnectionState.Closed, d.State);

        var (e, _) = Established();
        e.OnGuestPacket(FromGuest(VsockOp.Response), null); // duplicate
        Assert.Equal(ConnectionState.Closed, e.State);
    }

    [Fact]
    public void GuestInitiatedConnectionRespondsOnceTheHostAccepts()
    {
        var req = new VsockPacketHeader(Cid, 2, 40000, 6000, 0, 1, VsockOp.Request, 0, 1000, 0);
        var c = VsockConnection.GuestInitiated(Cid, req);
        Assert.False(c.HasRxWork);
        var host = new FakeHostSide();
        c.OnHostConnected(host);
        Assert.Null(host.Announced);
        Assert.True(c.TryNextRxPacket(4096, out var resp, out _));
        Assert.Equal((VsockOp.Response, 6000u, 40000u), (resp.Op, resp.SrcPort, resp.DstPort));
        Assert.Equal(1000u, c.PeerCredit);

        var refused = VsockConnection.GuestInitiated(Cid, req);
        refused.OnHostConnected(null);
        Assert.True(refused.TryNextRxPacket(4096, out var rst, out _));
        Assert.Equal(VsockOp.Rst, rst.Op);
        Assert.True(refused.Finished);
    }

    [Fact]
    public void LyingFwdCntCannotCreateCredit()
    {
        var (c, _) = Established(guestBufAlloc: 1000);
        c.OnGuestPacket(FromGuest(VsockOp.CreditUpdate, bufAlloc: 1000, fwdCnt: 4_000_000_000), null);
        Assert.Equal(0u, c.PeerCredit);
    }
}
