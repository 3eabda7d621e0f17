using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

public class VsockDeviceTests
{
    private const ulong Cid = 3, Base = 0x1_0000_0000;

    private sealed class FakeConnector : IHostConnector
    {
        public List<(VsockConnection Connection, uint Port)> Requests { get; } = new();
        public void Connect(VsockConnection connection, uint port) => Requests.Add((connection, port));
    }

    private sealed class Harness
    {
        public FakeGuestMemory Memory { get; } = new(Base, 4 << 20);
        public FakeDriver Rx { get; }
        public FakeDriver Tx { get; }
        public FakeConnector Connector { get; } = new();
        public List<int> Notified { get; } = new();
        public List<string> Log { get; } = new();
        public VsockDevice Device { get; }
        private int _rxSeen;

        public List<int> Refused { get; } = new();

        public Harness(int size = 16, int maxGuestConnections = VsockBackendOptions.DefaultMaxGuestConnections)
        {
            Rx = new FakeDriver(Memory, size, 0);
            Tx = new FakeDriver(Memory, size, 2 << 20);
            Device = new VsockDevice(Cid, Connector, Notified.Add, Log.Add, maxGuestConnections, Refused.Add) { Memory = Memory, RxRunning = true, TxRunning = true };
            Device.Rx.SetSize((uint)size);
            Device.Rx.SetAddresses(Memory, Rx.Desc, Rx.Avail, Rx.Used);
            Device.Tx.SetSize((uint)size);
            Device.Tx.SetAddresses(Memory, Tx.Desc, Tx.Avail, Tx.Used);
        }

        public void SendFromGuest(VsockPacketHeader h, byte[]? payload = null)
        {
            var bytes = new byte[VsockPacketHeader.Size + (payload?.Length ?? 0)];
            h.Write(bytes);
            payload?.CopyTo(bytes, VsockPacketHeader.Size);
            Tx.AddChain(FakeDriver.Readable(bytes[..VsockPacketHeader.Size]), FakeDriver.Readable(bytes[VsockPacketHeader.Size..]));
            Device.ProcessTx();
        }

        private readonly Dictionary<ushort, ulong[]> _rxBuffers = new();

        /// <summary>Posts rx buffers like the Debian 6.1 guest: [44-byte header][4096-byte payload].</summary>
        public void PostRx(int count, bool singleBuffer = false)
        {
            for (int i = 0; i < count; i++)
            {
                var (head, buffers) = singleBuffer
                    ? Rx.AddChain(FakeDriver.Writable(VsockPacketHeader.Size + 4096))
                    : Rx.AddChain(FakeDriver.Writable(VsockPacketHeader.Size), FakeDriver.Writable(4096));
                _rxBuffers[head] = buffers;
            }
            Device.ProcessRx();
        }

        public List<(VsockPacketHeader Header, byte[] Payload)> Received()
        {
            var list = new List<(VsockPacketHeader, byte[])>();
            for (; _rxSeen < Rx.UsedIdx; _rxSeen++)
            {
                var (id, len) = Rx.UsedElem(_rxSeen);
                var addrs = _rxBuffers[(ushort)id];
                var flat = new byte[len];
                int off = 0;
                foreach (var a in addrs)
                {
                    int take = Math.Min((int)len - off, addrs.Length == 1 ? (int)len : (a == addrs[0] ? VsockPacketHeader.Size : 4096));
                    Memory.At(a, take).CopyTo(flat.AsSpan(off));
                    off += take;
                }
                list.Add((VsockPacketHeader.Read(flat), flat[VsockPacketHeader.Size..]));
            }
            return list;
        }
    }

    private static VsockPacketHeader G(VsockOp op, uint srcPort, uint dstPort, uint len = 0, uint flags = 0)
        => new(Cid, 2, srcPort, dstPort, len, VsockConstants.TypeStream, op, flags, 256 * 1024, 0);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GuestConnectsToHostAndExchangesData(bool singleBuffer)
    {
        var h = new Harness();
        h.PostRx(8, singleBuffer);
        h.SendFromGuest(G(VsockOp.Request, 40000, 6000));
        var (conn, port) = Assert.Single(h.Connector.Requests);
        Assert.Equal(6000u, port);
        Assert.Contains(VsockDevice.TxQueue, h.Notified);

        var host = new FakeHostSide();
        h.Device.OnHostConnected(conn, host);
        var resp = Assert.Single(h.Received());
        Assert.Equal((VsockOp.Response, 2UL, Cid, 6000u, 40000u), (resp.Header.Op, resp.Header.SrcCid, resp.Header.DstCid, resp.Header.SrcPort, resp.Header.DstPort));
        Assert.Contains(VsockDevice.RxQueue, h.Notified);

        h.SendFromGuest(G(VsockOp.Rw, 40000, 6000, 3), [1, 2, 3]);
        Assert.Equal(3, host.Written);

        var data = Enumerable.Range(0, 6000).Select(i => (byte)i).ToArray();
        h.Device.OnHostData(conn, data, data.Length);
        var rw = h.Received();
        Assert.Equal([4096, 1904], rw.Select(p => (int)p.Header.Len));
        Assert.Equal(data, rw.SelectMany(p => p.Payload).ToArray());
        Assert.Equal(1, host.ReadRequests);
    }

    [Fact]
    public void GuestConnectionsBeyondTheCapAreResetAndReported_AndAClosedOneFreesItsPlace()
    {
        var h = new Harness(maxGuestConnections: 2);
        h.PostRx(8);
        h.SendFromGuest(G(VsockOp.Request, 40000, 6000));
        h.SendFromGuest(G(VsockOp.Request, 40001, 6000));
        h.SendFromGuest(G(VsockOp.Request, 40002, 6000));
        Assert.Equal(2, h.Connector.Requests.Count);
        Assert.Equal(2, h.Device.GuestConnectionCount);
        Assert.Equal([2], h.Refused);
        Assert.Equal(1, h.Device.GuestConnectionsRefused);
        var rst = Assert.Single(h.Received());
        Assert.Equal((VsockOp.Rst, 6000u, 40002u), (rst.Header.Op, rst.Header.SrcPort, rst.Header.DstPort));

        // Host-initiated connections (exec, cp) do not count against the guest's cap.
        Assert.NotNull(h.Device.ConnectFromHost(1024, new FakeHostSide()));

        // The guest resets one of its connections: its place is free again.
        h.SendFromGuest(G(VsockOp.Rst, 40000, 6000));
        Assert.Equal(1, h.Device.GuestConnectionCount);
        h.SendFromGuest(G(VsockOp.Request, 40003, 6000));
        Assert.Equal(3, h.Connector.Requests.Count);
        Assert.Single(h.Refused);
    }

    [Fact]
    public void PacketsForUnknownConnectionsGetRst()
    {
        var h = new Harness();
        h.PostRx(2);
        h.SendFromGuest(G(VsockOp.Rw, 40000, 7000, 2), [9, 9]);
        var rst = Assert.Single(h.Received());
        Assert.Equal((VsockOp.Rst, 7000u, 40000u), (rst.Header.Op, rst.Header.SrcPort, rst.Header.DstPort));
        h.SendFromGuest(G(VsockOp.Rst, 40000, 7000));
        Assert.Empty(h.Received()); // never answer a reset
    }

    [Fact]
    public void MalformedPacketsAreDroppedOrReset()
    {
        var h = new Harness();
        h.PostRx(4);
        h.Tx.AddChain(FakeDriver.Readable(new byte[10])); // shorter than a header
        h.Device.ProcessTx();
        h.SendFromGuest(G(VsockOp.Rw, 40000, 7000, 100), [1]); // len beyond the chain
        h.SendFromGuest(G(VsockOp.Request, 40000, 7001) with { SrcCid = 99 }); // spoofed source
        h.SendFromGuest(G(VsockOp.Request, 40000, 7002) with { Type = 2 }); // seqpacket
        Assert.Equal(4, h.Tx.UsedIdx); // every chain returned
        Assert.Equal([7000u, 7002u], h.Received().Select(p => p.Header.SrcPort));
        Assert.Empty(h.Connector.Requests);
        Assert.Equal(4, h.Log.Count);
    }

    [Fact]
    public void ResetsForUnknownConnectionsAreBounded()
    {
        var h = new Harness(size: 64);
        for (int i = 0; i < VsockDevice.MaxPendingResets + 50; i++)
        {
            h.SendFromGuest(G(VsockOp.CreditRequest, (uint)i, 7000));
        }
        h.PostRx(64);
        Assert.Equal(64, h.Received().Count);
    }

    [Fact]
    public void HostConnectionsGetDistinctPortsAndWaitForRxBuffers()
    {
        var h = new Harness();
        var a = h.Device.ConnectFromHost(5000, new FakeHostSide())!;
        var b = h.Device.ConnectFromHost(5000, new FakeHostSide())!;
        Assert.NotEqual(a.HostPort, b.HostPort);
        Assert.Empty(h.Received()); // no rx buffers posted yet
        h.PostRx(4);
        var requests = h.Received();
        Assert.Equal([VsockOp.Request, VsockOp.Request], requests.Select(p => p.Header.Op));
        h.SendFromGuest(G(VsockOp.Response, 5000, a.HostPort));
        Assert.Equal(ConnectionState.Established, a.State);
        h.SendFromGuest(G(VsockOp.Rst, 5000, b.HostPort));
        Assert.Equal(1, h.Device.ConnectionCount);
    }

    [Fact]
    public void BrokenRingStopsTheDevice()
    {
        var h = new Harness(size: 4);
        h.Tx.AvailIdx = 100;
        Assert.Throws<VirtqueueException>(() => h.Device.ProcessTx());
    }
}
