using System.Net.Sockets;
using System.Text;
using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

/// <summary>The hybrid muxer on real unix sockets, posting to a real <see cref="VsockDevice"/> (no guest memory: nothing reaches a ring).</summary>
public sealed class HybridMuxerTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ma-mux-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly object _loop = new();
    private readonly SemaphoreSlim _posted = new(0);
    private readonly List<string> _log = [];
    private readonly VsockDevice _device;
    private readonly HybridMuxer _muxer;

    public HybridMuxerTests()
    {
        Directory.CreateDirectory(_dir);
        // The post delegate stands in for the device loop: actions run one at a time, in order.
        _muxer = new HybridMuxer(Path.Combine(_dir, "vsock.sock"), action =>
        {
            lock (_loop) action(_device!);
            _posted.Release();
            return ValueTask.CompletedTask;
        }, s => { lock (_log) _log.Add(s); });
        _device = new VsockDevice(3, _muxer, _ => { }, s => { lock (_log) _log.Add(s); });
    }

    public void Dispose()
    {
        _muxer.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private void Serve()
    {
        _muxer.Listen();
        _muxer.Start();
    }

    private async Task<Socket> ClientAsync(string handshake)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(_muxer.SocketPath));
        await s.SendAsync(Encoding.ASCII.GetBytes(handshake), SocketFlags.None);
        return s;
    }

    /// <summary>Waits until the muxer closes <paramref name="s"/> (end of stream or reset), asserting it sent nothing.</summary>
    private static async Task AssertClosedUnansweredAsync(Socket s)
    {
        var buffer = new byte[64];
        try { Assert.Equal(0, await s.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(Timeout)); }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
    }

    private static VsockPacketHeader GuestRequest(uint guestPort, uint hostPort) =>
        new(3, VsockConstants.HostCid, guestPort, hostPort, 0, VsockConstants.TypeStream, VsockOp.Request, 0, 65536, 0);

    [Fact]
    public async Task ConnectLineOpensAHostInitiatedConnection()
    {
        Serve();
        using var client = await ClientAsync("CONNECT 5000\n");
        Assert.True(await _posted.WaitAsync(Timeout));
        Assert.Equal(1, _device.ConnectionCount);
        Assert.Equal(1, _muxer.ConnectionsOpened);
        Assert.Equal(1, _muxer.OpenSockets);
    }

    [Theory]
    [InlineData("GARBAGE\n")]
    [InlineData("CONNECT\n")]
    [InlineData("CONNECT \n")]
    [InlineData("CONNECT -1\n")]
    [InlineData("CONNECT +5\n")]
    [InlineData("CONNECT 0x10\n")]
    [InlineData("CONNECT 4294967296\n")]
    [InlineData("CONNECT 5 6\n")]
    [InlineData("CONNECT 5\r\n")]
    [InlineData("connect 5\n")]
    [InlineData(" CONNECT 5\n")]
    [InlineData("OK 5\n")]
    [InlineData("CONNECT 000000000000000000000000000000000000000000000000000000000000000000005\n")] // longer than a line may be
    public async Task GarbageOrForgedLinesAreClosedUnansweredAndServingGoesOn(string line)
    {
        Serve();
        using (var bad = await ClientAsync(line)) await AssertClosedUnansweredAsync(bad);
        Assert.Equal(0, _muxer.ConnectionsOpened);
        Assert.Equal(0, _device.ConnectionCount);
        using var good = await ClientAsync("CONNECT 22\n");
        Assert.True(await _posted.WaitAsync(Timeout));
        Assert.Equal(1, _device.ConnectionCount);
    }

    [Fact]
    public async Task EndOfStreamBeforeTheNewlineIsClosedUnanswered()
    {
        Serve();
        using var client = await ClientAsync("CONNECT 5");
        client.Shutdown(SocketShutdown.Send);
        await AssertClosedUnansweredAsync(client);
        Assert.Equal(0, _muxer.ConnectionsOpened);
    }

    [Fact]
    public async Task GuestConnectToAPortWithoutListenerIsRefused()
    {
        var connection = VsockConnection.GuestInitiated(3, GuestRequest(1234, 7777));
        _muxer.Connect(connection, 7777);
        Assert.True(await _posted.WaitAsync(Timeout));
        Assert.Equal(ConnectionState.Closed, connection.State);
        Assert.Null(connection.Host);
        Assert.Equal("no host listener", connection.ResetReason);
        Assert.Equal(0, _muxer.OpenSockets);
    }

    [Fact]
    public async Task GuestConnectReachesTheListenerForItsPortAndDisposeClosesIt()
    {
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(_muxer.ListenerPath(7778)));
        listener.Listen(1);
        var connection = VsockConnection.GuestInitiated(3, GuestRequest(1235, 7778));
        _muxer.Connect(connection, 7778);
        using var app = await listener.AcceptAsync().WaitAsync(Timeout);
        Assert.True(await _posted.WaitAsync(Timeout));
        Assert.Equal(ConnectionState.Established, connection.State);
        Assert.NotNull(connection.Host);
        Assert.Equal(1, _muxer.ConnectionsOpened);

        _muxer.Dispose();
        Assert.Equal(0, await app.ReceiveAsync(new byte[16], SocketFlags.None).WaitAsync(Timeout));
        Assert.Equal(0, _muxer.OpenSockets);
    }

    [Fact]
    public async Task DisposeUnlinksTheSocketAndClosesHandshakenClients()
    {
        Serve();
        Assert.True(File.Exists(_muxer.SocketPath));
        using var client = await ClientAsync("CONNECT 5000\n");
        Assert.True(await _posted.WaitAsync(Timeout));
        _muxer.Dispose();
        Assert.False(File.Exists(_muxer.SocketPath));
        await AssertClosedUnansweredAsync(client);
        using var late = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await Assert.ThrowsAnyAsync<SocketException>(() => late.ConnectAsync(new UnixDomainSocketEndPoint(_muxer.SocketPath)));
    }

    [Fact]
    public void ListenOnAnExistingFileFailsAndLeavesTheFile()
    {
        File.WriteAllText(_muxer.SocketPath, "stale");
        Assert.ThrowsAny<SocketException>(_muxer.Listen);
        _muxer.Dispose();
        Assert.True(File.Exists(_muxer.SocketPath));
    }

    [Fact]
    public async Task SeveringAGuestPortClosesItsHostConnectionsAndRefusesNewOnesButNotOtherPorts()
    {
        Serve();
        using var console = await ClientAsync("CONNECT 1029\n");
        Assert.True(await _posted.WaitAsync(Timeout));
        using var other = await ClientAsync("CONNECT 1024\n");
        Assert.True(await _posted.WaitAsync(Timeout));
        Assert.Equal(1, _muxer.OpenToGuestPort(1029));

        Assert.Equal(1, _muxer.SeverGuestPort(1029));
        Assert.True(_muxer.IsSevered(1029));
        await AssertClosedUnansweredAsync(console);
        Assert.Equal(0, _muxer.OpenToGuestPort(1029));
        Assert.Equal(1, _muxer.OpenToGuestPort(1024));

        using var again = await ClientAsync("CONNECT 1029\n");
        await AssertClosedUnansweredAsync(again);
        Assert.Equal(0, _muxer.OpenToGuestPort(1029));
        Assert.False(_muxer.IsSevered(1024));
    }
}
