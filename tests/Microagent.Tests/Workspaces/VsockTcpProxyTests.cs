using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>The supervisor's relay (shared by --vsock and mediation) without a VM: the "guest" connects to the unix listener the backend would.</summary>
public sealed class VsockTcpProxyTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);
    private readonly TcpListener _tcp = new(IPAddress.Loopback, 0);

    public VsockTcpProxyTests()
    {
        Directory.CreateDirectory(_root);
        _tcp.Start();
    }

    public void Dispose()
    {
        _tcp.Stop();
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private int Port => ((IPEndPoint)_tcp.LocalEndpoint).Port;
    private string Hybrid => Path.Combine(_root, "v.sock");

    private VsockTcpProxy Proxy(TimeSpan? wait = null, int port = 0, Action<string>? log = null) =>
        new(Hybrid, new VsockMapping(2048, "127.0.0.1", port == 0 ? Port : port), () => { }, log ?? (_ => { }), wait, "mediation");

    private async Task<Socket> GuestAsync()
    {
        var g = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await g.ConnectAsync(new UnixDomainSocketEndPoint(Hybrid + "_2048"));
        return g;
    }

    private static async Task<byte[]> ReadToEndAsync(Socket s, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var ms = new MemoryStream();
        var buf = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0) ms.Write(buf, 0, n);
        }
        catch (SocketException) { }
        return ms.ToArray();
    }

    [Fact]
    public async Task Many_concurrent_connections_each_get_their_own_tcp_connection()
    {
        await using var proxy = Proxy();
        var server = Task.Run(async () =>
        {
            var serving = new List<Task>();
            for (int i = 0; i < 50; i++)
            {
                var c = await _tcp.AcceptSocketAsync();
                serving.Add(Task.Run(async () =>
                {
                    using (c)
                    {
                        var got = await ReadToEndAsync(c, TimeSpan.FromSeconds(20));
                        await c.SendAsync(got.Reverse().ToArray());
                        c.Shutdown(SocketShutdown.Send);
                    }
                }));
            }
            await Task.WhenAll(serving);
        });
        var clients = Enumerable.Range(0, 50).Select(async i =>
        {
            using var g = await GuestAsync();
            byte[] msg = Encoding.ASCII.GetBytes($"agent-{i:D3}");
            await g.SendAsync(msg);
            g.Shutdown(SocketShutdown.Send);
            var back = await ReadToEndAsync(g, TimeSpan.FromSeconds(20));
            Assert.Equal(msg.Reverse().ToArray(), back);
        }).ToList();
        await Task.WhenAll(clients);
        await server;
        Assert.Equal(50, proxy.TotalConnections);
    }

    [Fact]
    public async Task A_reset_by_the_listener_breaks_the_guest_connection()
    {
        await using var proxy = Proxy();
        using var g = await GuestAsync();
        using (var c = await _tcp.AcceptSocketAsync())
        {
            await g.SendAsync("{\"request_id\":\"r1\"}\n"u8.ToArray());
            var buf = new byte[64];
            Assert.True(await c.ReceiveAsync(buf) > 0);
            c.LingerState = new LingerOption(true, 0); // the listener dies with the request in flight
        }
        Assert.Empty(await ReadToEndAsync(g, TimeSpan.FromSeconds(10)));
        await Poll.UntilAsync(() => proxy.ActiveConnections == 0, TimeSpan.FromSeconds(5), "the relay to end");
    }

    [Fact]
    public async Task Fail_closed_target_down_closes_the_guest_at_once_and_fail_open_waits_for_it()
    {
        var down = new TcpListener(IPAddress.Loopback, 0);
        down.Start();
        int port = ((IPEndPoint)down.LocalEndpoint).Port;
        down.Stop();
        await using (var closed = Proxy(port: port))
        {
            using var g = await GuestAsync();
            var sw = Stopwatch.StartNew();
            Assert.Empty(await ReadToEndAsync(g, TimeSpan.FromSeconds(10)));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), sw.Elapsed.ToString());
        }
        // Fail-open: the target comes up only after the relay's first connect attempt was refused.
        var refusedOnce = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var open = Proxy(TimeSpan.FromSeconds(20), port, line => { if (line.Contains("not reachable yet")) refusedOnce.TrySetResult(); });
        using var g2 = await GuestAsync();
        await g2.SendAsync("hello"u8.ToArray()); // held by the guest socket until the target comes
        await refusedOnce.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var late = new TcpListener(IPAddress.Loopback, port);
        late.Start();
        try
        {
            using var accepting = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            using var c = await late.AcceptSocketAsync(accepting.Token);
            var buf = new byte[16];
            int n = await c.ReceiveAsync(buf);
            Assert.Equal("hello", Encoding.ASCII.GetString(buf, 0, n));
        }
        finally { late.Stop(); }
    }

    [Fact]
    public async Task After_sever_no_byte_crosses_and_new_guest_connections_are_refused()
    {
        await using var proxy = Proxy();
        using var g = await GuestAsync();
        using var c = await _tcp.AcceptSocketAsync();
        await g.SendAsync("before\n"u8.ToArray());
        var buf = new byte[64];
        Assert.Equal(7, await c.ReceiveAsync(buf));

        proxy.Sever();
        Assert.True(proxy.IsSevered);
        try { await g.SendAsync("after\n"u8.ToArray()); } catch (SocketException) { }
        try { await c.SendAsync("to-guest\n"u8.ToArray()); } catch (SocketException) { }
        Assert.Empty(await ReadToEndAsync(c, TimeSpan.FromSeconds(5)));
        Assert.Empty(await ReadToEndAsync(g, TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAnyAsync<SocketException>(GuestAsync);
        Assert.Equal(0, proxy.ActiveConnections);
    }

    [Fact]
    public async Task A_slow_listener_throttles_the_guest_instead_of_buffering()
    {
        await using var proxy = Proxy();
        using var g = await GuestAsync();
        g.SendBufferSize = 64 * 1024;
        using var c = await _tcp.AcceptSocketAsync();
        c.ReceiveBufferSize = 64 * 1024;
        long sent = 0;
        var chunk = new byte[64 * 1024];
        // Non-blocking sends for 2 s, so every byte the kernel accepted is counted (a cancelled blocking send may
        // have written part of its chunk). Nobody reads on the TCP side.
        g.Blocking = false;
        var until = DateTime.UtcNow.AddSeconds(2);
        while (DateTime.UtcNow < until)
        {
            try { sent += g.Send(chunk, SocketFlags.None); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock) { await Task.Delay(20); }
        }
        g.Blocking = true;
        Assert.True(sent < 64L * 1024 * 1024, $"the guest could push {sent} bytes into a listener that reads nothing");
        // (Process-wide memory is not asserted: other test classes allocate concurrently. The bound on what the
        // sender could push is the proof that nothing between the two sockets buffers without limit.)
        // Once the listener reads, everything arrives intact.
        g.Shutdown(SocketShutdown.Send);
        Assert.Equal(sent, (await ReadToEndAsync(c, TimeSpan.FromSeconds(20))).LongLength);
    }

    [Fact]
    public async Task Relays_to_tcp_with_half_close()
    {
        Directory.CreateDirectory(_root);
        using var tcp = new TcpListener(IPAddress.Loopback, 0);
        tcp.Start();
        int port = ((IPEndPoint)tcp.LocalEndpoint).Port;
        string hybrid = Path.Combine(_root, "v.sock");
        int activity = 0;
        await using var proxy = new VsockTcpProxy(hybrid, new VsockMapping(5000, "127.0.0.1", port), () => Interlocked.Increment(ref activity), _ => { });

        var server = Task.Run(async () =>
        {
            using var c = await tcp.AcceptTcpClientAsync();
            var s = c.GetStream();
            var got = new MemoryStream();
            await s.CopyToAsync(got); // until the guest half-closes
            await s.WriteAsync(Encoding.ASCII.GetBytes("echo:" + Encoding.ASCII.GetString(got.ToArray())));
            c.Client.Shutdown(SocketShutdown.Send);
        });
        using var guest = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await guest.ConnectAsync(new UnixDomainSocketEndPoint(hybrid + "_5000"));
        await guest.SendAsync("ping"u8.ToArray());
        guest.Shutdown(SocketShutdown.Send);
        var reply = new MemoryStream();
        var buf = new byte[256];
        int n;
        while ((n = await guest.ReceiveAsync(buf)) > 0) reply.Write(buf, 0, n);
        await server;
        Assert.Equal("echo:ping", Encoding.ASCII.GetString(reply.ToArray()));
        Assert.True(activity > 0);
    }
}
