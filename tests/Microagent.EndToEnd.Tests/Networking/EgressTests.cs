using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>
/// The user network end to end (docs/ARCHITECTURE.md "Networking"): real guest programs (busybox wget, nc) captured by the
/// agent, decided by the host broker of a supervisor started by bin/microagent, destinations on 127.0.0.2/127.0.0.3 only. The guest
/// knows them only by name: the broker answers host-loopback addresses as stand-ins from 198.18.0.0/15 (in the guest 127/8 is its own).
/// </summary>
public sealed class EgressTests(EgressWorkspace ws) : IClassFixture<EgressWorkspace>
{
    private static string Prop(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    [Fact]
    public async Task An_allowed_name_is_reached_and_audited()
    {
        var r = await ws.ShAsync($"wget -q -O - http://allowed.test:{ws.Allowed.Port}/hello");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("hello from allowed\n", r.Stdout);
        var audit = await ws.AuditAsync();
        Assert.Contains(audit, e => Prop(e, "kind") == "dns" && Prop(e, "name") == "allowed.test" && Prop(e, "ip") == "127.0.0.2");
        await Poll.UntilAsync(async () => (await ws.AuditAsync()).Any(e => Prop(e, "kind") == "connect" && Prop(e, "verdict") == "allowed"
            && Prop(e, "name") == "allowed.test" && e.GetProperty("bytesIn").GetInt64() > 0), TimeSpan.FromSeconds(20), "the allowed connection's record");
        ws.AssertNothingLeftTheHost();
    }

    [Fact]
    public async Task Packets_nothing_carries_are_dropped_in_the_guest_and_counted_in_status()
    {
        // ICMP and UDP other than DNS have no carrier: they leave by the guest's dummy device and are dropped there, never reaching the host.
        var r = await ws.ShAsync("ping -c 2 -W 1 198.51.100.9; echo x | nc -u -w 1 198.51.100.9 9999; true");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var status = await MicroagentCli.RunAsync(["status", ws.Name, "--json"]);
        using var doc = JsonDocument.Parse(status.Stdout);
        var guest = doc.RootElement.GetProperty("networkState").GetProperty("guest");
        Assert.True(guest.GetProperty("droppedPackets").GetInt64() >= 2, status.Stdout);
        Assert.True(guest.GetProperty("dnsQueries").GetInt64() >= 0);
        ws.AssertNothingLeftTheHost();
    }

    /// <summary>Shell that sets <c>$a</c> to the address the guest resolves <paramref name="name"/> to (a stand-in).</summary>
    private static string Resolve(string name) => $"a=$(nslookup {name} | grep -o '198\\.1[89]\\.[0-9]*\\.[0-9]*' | head -1); [ -n \"$a\" ] || exit 99; ";

    [Fact]
    public async Task Denied_by_name_and_by_ip_reach_nothing_and_a_claimed_host_header_gains_nothing()
    {
        foreach (string script in new[]
        {
            $"wget -q -O - http://denied.test:{ws.Denied.Port}/hello",
            Resolve("denied.test") + $"wget -q -O - http://$a:{ws.Denied.Port}/hello",
            Resolve("denied.test") + $"wget -q -O - --header 'Host: allowed.test' http://$a:{ws.Denied.Port}/hello",
            $"wget -q -O - http://127.0.0.3:{ws.Denied.Port}/hello", // the guest's own loopback: never the host's
        })
        {
            var r = await ws.ShAsync(script);
            Assert.True(r.ExitCode is not 0 and not 99, $"{script}: exit {r.ExitCode} {r.Stderr}");
            Assert.Equal("", r.Stdout);
        }
        Assert.Equal(0, ws.Denied.Connections);
        var refused = (await ws.AuditAsync()).Where(e => Prop(e, "verdict") == "refused" && Prop(e, "ip") == "127.0.0.3").ToList();
        Assert.True(refused.Count >= 3, $"{refused.Count} refusals");
        Assert.All(refused, e => Assert.Equal("inside:loopback", Prop(e, "rule")));
        ws.AssertNothingLeftTheHost();
    }

    [Fact]
    public async Task Private_and_metadata_addresses_are_refused_by_the_policy_before_any_dial()
    {
        // 198.19.255.254: a stand-in address the broker never handed out (connecting without resolving gains nothing).
        foreach (string target in new[] { "169.254.169.254/latest/meta-data/", "10.0.0.1/", "192.168.1.1/", "100.64.0.1/", "198.19.255.254/" })
            Assert.NotEqual(0, (await ws.ShAsync($"wget -q -O - http://{target}")).ExitCode);
        var audit = await ws.AuditAsync();
        foreach (var (ip, rule) in new[] { ("169.254.169.254", "inside:link-local"), ("10.0.0.1", "inside:private"), ("192.168.1.1", "inside:private"),
                     ("100.64.0.1", "inside:cgnat"), ("198.19.255.254", "inside:unmapped-stand-in") })
            Assert.Contains(audit, e => Prop(e, "ip") == ip && Prop(e, "verdict") == "refused" && Prop(e, "rule") == rule);
        // The rule refused them, not the test guard beside the dialler: nothing was dialled.
        ws.AssertNothingLeftTheHost();
    }

    [Fact]
    public async Task A_published_port_round_trips_and_is_shown_in_status()
    {
        var server = await ws.ShAsync("(printf 'from-guest' | nc -l -p 8000 > /tmp/pub-in) >/dev/null 2>&1 & echo started");
        Assert.True(server.ExitCode == 0, server.Stderr);
        string got = "";
        await Poll.UntilAsync(async () =>
        {
            using var c = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await c.ConnectAsync(IPAddress.Loopback, ws.PublishedPort);
                await c.SendAsync("from-host"u8.ToArray());
                c.Shutdown(SocketShutdown.Send);
                var ms = new MemoryStream();
                var buf = new byte[256];
                int n;
                while ((n = await c.ReceiveAsync(buf)) > 0) ms.Write(buf, 0, n);
                got = Encoding.ASCII.GetString(ms.ToArray());
            }
            catch (SocketException) { }
            return got.Length > 0;
        }, TimeSpan.FromSeconds(30), "the guest listener on port 8000 through the published port");
        Assert.Equal("from-guest", got);
        Assert.Equal("from-host", (await ws.ShAsync("cat /tmp/pub-in")).Stdout);
        var status = await MicroagentCli.RunAsync(["status", ws.Name, "--json"]);
        using var doc = JsonDocument.Parse(status.Stdout);
        var published = doc.RootElement.GetProperty("networkState").GetProperty("published");
        Assert.Equal(ws.PublishedPort, published[0].GetProperty("hostPort").GetInt32());
        Assert.Contains($"127.0.0.1:{ws.PublishedPort}:8000/tcp", (await MicroagentCli.RunAsync(["status", ws.Name])).Stdout);
    }

    [Fact]
    public async Task Fifty_parallel_downloads_all_arrive_with_the_right_sha256()
    {
        var r = await ws.ShAsync($"for i in $(seq 1 50); do wget -q -O /tmp/d$i http://allowed.test:{ws.Allowed.Port}/blob & done; wait; " +
                                 "sha256sum /tmp/d* | cut -d' ' -f1 | sort | uniq -c; rm -f /tmp/d*");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal($"50 {ws.Allowed.BlobSha256}", r.Stdout.Trim());
        ws.AssertNothingLeftTheHost();
    }
}

/// <summary>The locked allowlist (other names: REFUSED) and the byte cap (the connection torn down, audited).</summary>
public sealed class LockedEgressTests(LockedEgressWorkspace ws) : IClassFixture<LockedEgressWorkspace>
{
    private static string Prop(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    [Fact]
    public async Task A_locked_allowlist_answers_refused_for_other_names()
    {
        var denied = await ws.ShAsync("nslookup denied.test");
        Assert.NotEqual(0, denied.ExitCode);
        var allowed = await ws.ShAsync("nslookup allowed.test");
        Assert.True(allowed.ExitCode == 0, allowed.Stdout + allowed.Stderr);
        Assert.Matches(@"Address.*198\.1[89]\.", allowed.Stdout); // host loopback is answered as a stand-in
        Assert.DoesNotContain("127.0.0.2", allowed.Stdout);
        Assert.Contains(await ws.AuditAsync(), e => Prop(e, "kind") == "dns" && Prop(e, "name") == "denied.test" && Prop(e, "verdict") == "refused"
            && Prop(e, "rule") == "not-allowlisted");
        Assert.Equal(0, ws.Denied.Connections);
    }

    [Fact]
    public async Task The_byte_cap_tears_the_download_down_and_is_audited()
    {
        var r = await ws.ShAsync($"wget -q -O /tmp/big http://allowed.test:{ws.Allowed.Port}/blob; echo exit=$?; wc -c < /tmp/big");
        Assert.DoesNotContain("exit=0", r.Stdout);
        await Poll.UntilAsync(async () => (await ws.AuditAsync()).Any(e => Prop(e, "end") == "max-total-bytes"), TimeSpan.FromSeconds(20), "the cap's audit record");
        var cap = (await ws.AuditAsync()).First(e => Prop(e, "end") == "max-total-bytes");
        Assert.True(cap.GetProperty("bytesIn").GetInt64() + cap.GetProperty("bytesOut").GetInt64() <= 200000);
        Assert.NotEqual(0, (await ws.ShAsync($"wget -q -O - http://allowed.test:{ws.Allowed.Port}/hello")).ExitCode);
        Assert.Contains(await ws.AuditAsync(), e => Prop(e, "verdict") == "refused" && Prop(e, "rule") == "max-total-bytes");
        ws.AssertNothingLeftTheHost();
    }
}

/// <summary>One-shot runs: isolated has no egress; root flushing the guest's routes and capture still reaches nothing denied.</summary>
public sealed class EgressRunTests
{
    [Fact]
    public async Task Isolated_has_no_egress_at_all()
    {
        using var allowed = new LoopbackHttpServer("127.0.0.2", "allowed");
        var r = await MicroagentCli.RunAsync(["run", "--network", "isolated", .. EgressWorkspace.Hosts, "--",
            "sh", "-c", $"wget -q -O - http://allowed.test:{allowed.Port}/hello; echo a=$?; wget -q -O - http://198.18.0.1:{allowed.Port}/hello; echo b=$?; " +
            "ls /sys/class/net | tr '\\n' ' '"]);
        Assert.Contains("a=1", r.Stdout);
        Assert.Contains("b=1", r.Stdout);
        Assert.DoesNotContain("hello from", r.Stdout);
        Assert.Contains("lo ", r.Stdout);
        Assert.Equal(0, allowed.Connections);
        var publish = await MicroagentCli.RunAsync(["run", "--network", "isolated", "-p", "18080:80", "--json", "--", "true"]);
        Assert.Equal(2, publish.ExitCode);
        Assert.Contains("cannot publish", publish.Stdout);
    }

    [Fact]
    public async Task Root_flushing_routes_and_the_capture_device_still_reaches_nothing_denied()
    {
        using var denied = new LoopbackHttpServer("127.0.0.3", "denied");
        var r = await MicroagentCli.RunAsync(["run", .. EgressWorkspace.Hosts, "--", "sh", "-c",
            "ip route flush table main; ip -6 route flush table main; ip link del dummy0; " +
            $"wget -q -O - http://denied.test:{denied.Port}/hello; echo a=$?; wget -q -O - http://198.18.0.2:{denied.Port}/hello; echo b=$?; " +
            $"printf x | nc -w 3 198.18.0.2 {denied.Port}; echo c=$?"]);
        Assert.Contains("c=", r.Stdout);
        Assert.DoesNotContain("hello from denied", r.Stdout);
        Assert.Equal(0, denied.Connections);
    }
}
