using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Networking;
using Microagent.Protocol;

namespace Microagent.Tests.Networking;

/// <summary>
/// The broker in-process over its real unix listeners, spoken to with the real frames, as the guest agent does; the
/// destinations are TCP servers on 127.0.0.2 (allowed.test) and 127.0.0.3 (denied.test). Nothing leaves this host.
/// </summary>
public sealed class EgressBrokerTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine("/tmp", $"ma-eb-{Guid.NewGuid():N}"[..14]);
    private readonly LoopbackServer _allowed = new(IPAddress.Parse("127.0.0.2"));
    private readonly LoopbackServer _denied = new(IPAddress.Parse("127.0.0.3"));
    private readonly ConcurrentQueue<string> _log = new();
    private EgressBroker? _broker;

    private string Hybrid => Path.Combine(_root, "v.sock");
    private string AuditPath => Path.Combine(_root, "egress.jsonl");

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
        _allowed.Dispose();
        _denied.Dispose();
        Directory.Delete(_root, true);
    }

    private EgressBroker Start(NetworkSpec? extra = null)
    {
        var spec = new NetworkSpec
        {
            EgressAllow = ["allowed.test"],
            AddHosts = [HostEntry.Parse("allowed.test:127.0.0.2"), HostEntry.Parse("denied.test:127.0.0.3")],
        }.With(extra);
        var policy = new EgressPolicy(spec.Resolve(), loopbackGuard: true);
        return _broker = new EgressBroker(Hybrid, policy, new EgressAudit(AuditPath), () => { }, _log.Enqueue,
            (_, _) => throw new InvalidOperationException("the host resolver must not be asked in tests")).Start();
    }

    private async Task<(Socket Guest, EgressVerdict Verdict)> ConnectAsync(string ip, int port)
    {
        var g = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await g.ConnectAsync(new UnixDomainSocketEndPoint($"{Hybrid}_{NetworkInfo.EgressPort}"));
        var ns = new NetworkStream(g, ownsSocket: false);
        await Frame.WriteAsync(ns, new EgressRequest { Ip = ip, Port = port }, NetworkJson.Default.EgressRequest);
        var verdict = await Frame.ReadAsync(ns, NetworkJson.Default.EgressVerdict) ?? throw new IOException("no verdict");
        return (g, verdict);
    }

    private static async Task<string> ExchangeAsync(Socket g, string send)
    {
        await g.SendAsync(Encoding.ASCII.GetBytes(send));
        g.Shutdown(SocketShutdown.Send);
        var ms = new MemoryStream();
        var buf = new byte[4096];
        int n;
        while ((n = await g.ReceiveAsync(buf)) > 0) ms.Write(buf, 0, n);
        return Encoding.ASCII.GetString(ms.ToArray());
    }

    private async Task<List<EgressRecord>> AuditAsync()
    {
        var list = new List<EgressRecord>();
        await foreach (var r in EgressAudit.ReadAsync(AuditPath, follow: false)) list.Add(r);
        return list;
    }

    private async Task<byte[]> DnsAsync(string name, ushort type = DnsWire.TypeA)
    {
        using var g = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await g.ConnectAsync(new UnixDomainSocketEndPoint($"{Hybrid}_{NetworkInfo.DnsPort}"));
        await using var ns = new NetworkStream(g, ownsSocket: false);
        await Frame.WriteAsync(ns, new DnsExchange { Message = DnsWire.BuildQuery(1, name, type) }, NetworkJson.Default.DnsExchange);
        return (await Frame.ReadAsync(ns, NetworkJson.Default.DnsExchange))?.Message ?? [];
    }

    [Fact]
    public async Task An_allowed_destination_is_dialled_relayed_and_audited_with_its_bytes()
    {
        var broker = Start();
        var (g, verdict) = await ConnectAsync("127.0.0.2", _allowed.Port);
        using (g)
        {
            Assert.True(verdict.Allowed, verdict.Reason);
            Assert.Equal("echo:hello", await ExchangeAsync(g, "hello"));
        }
        await Poll.UntilAsync(() => File.Exists(AuditPath) && File.ReadAllText(AuditPath).Contains("\"allowed\""), TimeSpan.FromSeconds(10), "the audit record");
        var r = (await AuditAsync()).Single();
        Assert.Equal(("connect", "allowed", "allow-name allowed.test", "allowed.test", "127.0.0.2"), (r.Kind, r.Verdict, r.Rule, r.Name, r.Ip));
        Assert.Equal((5L, 10L), (r.BytesOut, r.BytesIn));
        Assert.Equal(1, broker.Counters.Allowed);
    }

    [Fact]
    public async Task Denied_by_name_and_by_ip_and_the_inside_are_refused_before_any_dial()
    {
        var broker = Start();
        foreach (var (ip, port) in new[] { ("127.0.0.3", _denied.Port), ("127.0.0.1", 22), ("169.254.169.254", 80), ("10.0.0.1", 443), ("8.8.8.8", 53) })
        {
            var (g, verdict) = await ConnectAsync(ip, port);
            g.Dispose();
            Assert.False(verdict.Allowed, ip);
        }
        Assert.Equal(0, broker.DialAttempts);
        Assert.Equal(0, _denied.Accepted);
        var rules = (await AuditAsync()).Select(r => (r.Ip, r.Rule, r.Name)).ToList();
        Assert.Equal([("127.0.0.3", "inside:loopback", "denied.test"), ("127.0.0.1", "inside:loopback", null), ("169.254.169.254", "inside:link-local", null),
            ("10.0.0.1", "inside:private", null), ("8.8.8.8", "test-guard", null)], rules);
        Assert.Contains(_log, l => l.StartsWith("ERROR: MICROAGENT_EGRESS_LOOPBACK_ONLY=1 refused a dial to 8.8.8.8", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stand_in_from_dns_is_dialled_and_audited_as_its_real_address_and_an_unmapped_one_is_refused()
    {
        var broker = Start();
        var allowed = DnsWire.ParseAnswer(await DnsAsync("allowed.test")).Addresses.Single();
        var denied = DnsWire.ParseAnswer(await DnsAsync("denied.test")).Addresses.Single();
        Assert.True(StandInAddresses.InRange(allowed) && StandInAddresses.InRange(denied) && !allowed.Equals(denied));
        var (g, verdict) = await ConnectAsync(allowed.ToString(), _allowed.Port);
        using (g)
        {
            Assert.True(verdict.Allowed, verdict.Reason);
            Assert.Equal("echo:hi", await ExchangeAsync(g, "hi"));
        }
        foreach (string ip in new[] { denied.ToString(), "198.18.200.7" })
        {
            var (d, v) = await ConnectAsync(ip, _denied.Port);
            d.Dispose();
            Assert.False(v.Allowed, ip);
        }
        Assert.Equal((1L, 0), (broker.DialAttempts, _denied.Accepted));
        await Poll.UntilAsync(() => File.ReadAllText(AuditPath).Contains("\"kind\":\"connect\",\"verdict\":\"allowed\""), TimeSpan.FromSeconds(10), "the audit record");
        var connects = (await AuditAsync()).Where(r => r.Kind == "connect").Select(r => (r.Verdict, r.Rule, r.Name, r.Ip)).ToHashSet();
        Assert.Equal([("allowed", "allow-name allowed.test", "allowed.test", "127.0.0.2"), ("refused", "inside:loopback", "denied.test", "127.0.0.3"),
            ("refused", "inside:unmapped-stand-in", null, "198.18.200.7")], connects);
    }

    [Fact]
    public async Task Dns_answers_add_host_entries_and_refuses_when_locked()
    {
        Start(new NetworkSpec { LockAllowlist = true });
        var (rcode, addrs) = DnsWire.ParseAnswer(await DnsAsync("allowed.test"));
        Assert.Equal((0, "198.18.0.1"), (rcode, addrs.Single().ToString())); // host loopback is answered as a stand-in
        Assert.Equal(DnsWire.Refused, DnsWire.ParseAnswer(await DnsAsync("denied.test")).Rcode);
        Assert.Empty(DnsWire.ParseAnswer(await DnsAsync("allowed.test", DnsWire.TypeAaaa)).Addresses);
        var audit = await AuditAsync();
        Assert.Contains(audit, r => r is { Kind: "dns", Verdict: "refused", Rule: "not-allowlisted", Name: "denied.test" });
        Assert.Contains(audit, r => r is { Kind: "dns", Verdict: "allowed", Name: "allowed.test", Ip: "127.0.0.2" });
    }

    [Fact]
    public async Task The_connection_cap_refuses_without_a_dial_and_is_audited()
    {
        var broker = Start(new NetworkSpec { MaxConnections = 2 });
        var open = new List<Socket>();
        for (int i = 0; i < 2; i++)
        {
            var (g, v) = await ConnectAsync("127.0.0.2", _allowed.Port);
            Assert.True(v.Allowed);
            open.Add(g);
        }
        var (third, verdict) = await ConnectAsync("127.0.0.2", _allowed.Port);
        third.Dispose();
        Assert.Equal((false, "max-conns"), (verdict.Allowed, verdict.Reason));
        Assert.Equal(2, broker.DialAttempts);
        Assert.Contains(await AuditAsync(), r => r is { Verdict: "refused", Rule: "max-conns" });
        foreach (var g in open) g.Dispose();
    }

    [Fact]
    public async Task The_byte_cap_tears_the_connection_down_and_refuses_later_ones()
    {
        Start(new NetworkSpec { MaxTotalBytes = 64 * 1024 });
        var (g, v) = await ConnectAsync("127.0.0.2", _allowed.Port);
        Assert.True(v.Allowed);
        using (g)
        {
            var chunk = new byte[16 * 1024];
            long sent = 0;
            try
            {
                for (int i = 0; i < 64; i++) sent += await g.SendAsync(chunk);
                var buf = new byte[65536];
                while (await g.ReceiveAsync(buf) > 0) { }
            }
            catch (SocketException) { }
        }
        await Poll.UntilAsync(() => File.Exists(AuditPath) && File.ReadAllText(AuditPath).Contains("max-total-bytes"), TimeSpan.FromSeconds(10), "the cap's audit record");
        var r = (await AuditAsync()).Single(x => x.End == "max-total-bytes");
        Assert.True(r.BytesOut + r.BytesIn <= 64 * 1024, $"{r.BytesOut}+{r.BytesIn}");
        var (later, verdict) = await ConnectAsync("127.0.0.2", _allowed.Port);
        later.Dispose();
        Assert.Equal((false, "max-total-bytes"), (verdict.Allowed, verdict.Reason));
    }

    [Fact]
    public async Task Severing_closes_connections_and_listeners_within_a_second()
    {
        var broker = Start();
        var (g, v) = await ConnectAsync("127.0.0.2", _allowed.Port);
        Assert.True(v.Allowed);
        var started = System.Diagnostics.Stopwatch.StartNew();
        broker.Sever();
        var buf = new byte[16];
        int n;
        try { n = await g.ReceiveAsync(buf).WaitAsync(TimeSpan.FromSeconds(1)); } catch (SocketException) { n = 0; }
        Assert.Equal(0, n);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(1), $"{started.ElapsedMilliseconds} ms");
        g.Dispose();
        Assert.False(File.Exists($"{Hybrid}_{NetworkInfo.EgressPort}"));
        Assert.False(File.Exists($"{Hybrid}_{NetworkInfo.DnsPort}"));
        await Assert.ThrowsAnyAsync<SocketException>(() => ConnectAsync("127.0.0.2", _allowed.Port));
        Assert.True(broker.Counters.Severed);
        await Poll.UntilAsync(() => File.Exists(AuditPath) && File.ReadAllText(AuditPath).Contains("severed"), TimeSpan.FromSeconds(10), "the severed connection's record");
    }

    [Fact]
    public async Task A_malformed_request_is_refused()
    {
        Start();
        using var g = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await g.ConnectAsync(new UnixDomainSocketEndPoint($"{Hybrid}_{NetworkInfo.EgressPort}"));
        await using var ns = new NetworkStream(g, ownsSocket: false);
        await Frame.WriteAsync(ns, new EgressRequest { Ip = "not-an-ip", Port = 80 }, NetworkJson.Default.EgressRequest);
        var v = await Frame.ReadAsync(ns, NetworkJson.Default.EgressVerdict);
        Assert.False(v!.Allowed);
        Assert.Contains(await AuditAsync(), r => r.Rule == "bad-request");
    }
}

/// <summary>A TCP server on one loopback address that answers "echo:" + what it read, counting connections.</summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly TcpListener _listener;
    private int _accepted;

    public LoopbackServer(IPAddress address)
    {
        _listener = new TcpListener(address, 0);
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int Accepted => Volatile.Read(ref _accepted);

    private async Task AcceptLoop()
    {
        while (true)
        {
            Socket s;
            try { s = await _listener.AcceptSocketAsync(); } catch (Exception) { return; }
            Interlocked.Increment(ref _accepted);
            _ = Task.Run(async () =>
            {
                using (s)
                {
                    try
                    {
                        var ms = new MemoryStream();
                        var buf = new byte[16384];
                        int n;
                        while ((n = await s.ReceiveAsync(buf)) > 0) ms.Write(buf, 0, n);
                        await s.SendAsync(Encoding.ASCII.GetBytes("echo:").Concat(ms.ToArray()).ToArray());
                        s.Shutdown(SocketShutdown.Both);
                    }
                    catch (SocketException) { }
                }
            });
        }
    }

    public void Dispose() => _listener.Stop();
}
