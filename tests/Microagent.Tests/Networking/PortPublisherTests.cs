using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Errors;
using Microagent.Networking;

namespace Microagent.Tests.Networking;

/// <summary>Published ports without a VM: the agent's forward is stood in for by a connection to a loopback echo server.</summary>
public sealed class PortPublisherTests : IDisposable
{
    private readonly LoopbackServer _guest = new(IPAddress.Loopback);
    private readonly List<int> _forwarded = [];

    public void Dispose() => _guest.Dispose();

    private async Task<Stream> ForwardAsync(int port, CancellationToken ct)
    {
        lock (_forwarded) _forwarded.Add(port);
        var s = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(IPAddress.Loopback, _guest.Port, ct);
        return new NetworkStream(s, ownsSocket: true);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task A_host_connection_is_bridged_to_the_guest_port_and_severing_closes_the_listener()
    {
        int port = FreePort();
        await using var p = PortPublisher.Start([PublishedPort.Parse($"{port}:80")], ForwardAsync, () => { }, _ => { });
        Assert.Equal([PublishedPort.Parse($"127.0.0.1:{port}:80")], p.Ports);
        using (var c = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await c.ConnectAsync(IPAddress.Loopback, port);
            await c.SendAsync("round trip"u8.ToArray());
            c.Shutdown(SocketShutdown.Send);
            var ms = new MemoryStream();
            var buf = new byte[256];
            int n;
            while ((n = await c.ReceiveAsync(buf)) > 0) ms.Write(buf, 0, n);
            Assert.Equal("echo:round trip", Encoding.ASCII.GetString(ms.ToArray()));
        }
        Assert.Equal([80], _forwarded);
        p.Sever();
        Assert.Empty(p.Ports);
        using var after = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var e = await Assert.ThrowsAsync<SocketException>(() => after.ConnectAsync(IPAddress.Loopback, port));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    [Fact]
    public void A_port_in_use_is_a_conflict_naming_it()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var e = Assert.Throws<MicroagentException>(() => PortPublisher.Start([PublishedPort.Parse($"{port}:80")], ForwardAsync, () => { }, _ => { }));
        Assert.Equal(ErrorKind.Conflict, e.Kind);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
    }
}
