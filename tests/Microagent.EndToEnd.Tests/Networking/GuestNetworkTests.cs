using Microagent.Protocol;

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>
/// The guest half of the user network (docs/ARCHITECTURE.md "Networking") against a real guest kernel: capture by the agent's
/// nf_tables rules, the transparent listener, the DNS stub, drop counting. The host half is <see cref="StandInBroker"/>; no
/// byte leaves this host (the broker dials nothing).
/// </summary>
public sealed class GuestNetworkTests(NetworkedVm fixture) : IClassFixture<NetworkedVm>
{
    [Fact]
    public async Task Tcp_connection_arrives_with_its_original_destination_and_bytes_relay_both_ways()
    {
        var (exit, stdout, stderr) = await fixture.ShAsync($"printf 'ping-from-guest' | nc {StandInBroker.Address} {StandInBroker.EchoPort}");
        Assert.True(exit == 0, stderr);
        Assert.Equal("echo:ping-from-guest", stdout);
        Assert.Contains(fixture.Broker.EgressRequests, r => r is { Ip: StandInBroker.Address, Port: StandInBroker.EchoPort, Proto: "tcp" });
    }

    [Fact]
    public async Task Wget_by_name_resolves_through_the_stub_and_fetches_through_the_capture()
    {
        var (exit, stdout, stderr) = await fixture.ShAsync($"cat /etc/resolv.conf >&2; wget -q -O - http://{StandInBroker.Name}:{StandInBroker.HttpPort}/");
        Assert.True(exit == 0, stderr);
        Assert.Equal($"hello from {StandInBroker.Address}:{StandInBroker.HttpPort}\n", stdout);
        Assert.Contains("nameserver 127.0.0.1", stderr);
        Assert.Contains(StandInBroker.Name, fixture.Broker.DnsNames);
    }

    [Fact]
    public async Task Dns_to_any_server_is_captured_by_the_stub()
    {
        // The query names a public resolver; the capture rule sends it to the stub, which asks the host.
        var (exit, stdout, stderr) = await fixture.ShAsync($"nslookup {StandInBroker.Name} 192.0.2.53");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains(StandInBroker.Address, stdout);
    }

    [Fact]
    public async Task Refused_verdict_is_a_connection_error_for_the_guest_program()
    {
        // (busybox wget's -T crashes it; its default timeout is fine here: the reset comes at once)
        var (exit, stdout, stderr) = await fixture.ShAsync($"wget -O - http://{StandInBroker.Address}:9/");
        Assert.Equal(1, exit);
        Assert.Contains("Connection reset by peer", stderr);
        Assert.Equal("", stdout);
        Assert.Contains(fixture.Broker.EgressRequests, r => r is { Ip: StandInBroker.Address, Port: 9 });
    }

    [Fact]
    public async Task Udp_to_other_ports_and_icmp_are_dropped_and_counted()
    {
        NetStats before = await fixture.Vm.Agent.NetStatsAsync();
        // tftp is UDP port 69; ping is ICMP. Neither has a carrier: both fail and the packets are counted at the dummy device.
        var (tftp, _, _) = await fixture.ShAsync("timeout 3 tftp -g -r x -l /tmp/x 198.51.100.1 69");
        var (ping, _, _) = await fixture.ShAsync("ping -c 2 -W 1 198.51.100.1");
        NetStats after = await fixture.Vm.Agent.NetStatsAsync();
        Assert.NotEqual(0, tftp);
        Assert.NotEqual(0, ping);
        Assert.True(after.DroppedPackets >= before.DroppedPackets + 3, $"dropped {before.DroppedPackets} -> {after.DroppedPackets}");
        Assert.Equal(before.CapturedConnections, after.CapturedConnections);
    }

    [Fact]
    public async Task The_guest_has_no_nic_only_loopback_and_the_dummy()
    {
        var (_, stdout, _) = await fixture.ShAsync("ls /sys/class/net | sort | tr '\\n' ' '");
        Assert.Equal("dummy0 lo ", stdout);
    }

    [Fact]
    public async Task Net_stats_count_captured_connections_and_dns_queries()
    {
        NetStats before = await fixture.Vm.Agent.NetStatsAsync();
        await fixture.ShAsync($"printf x | nc {StandInBroker.Address} {StandInBroker.EchoPort}; nslookup {StandInBroker.Name} >/dev/null");
        NetStats after = await fixture.Vm.Agent.NetStatsAsync();
        Assert.True(after.CapturedConnections >= before.CapturedConnections + 1);
        Assert.True(after.DnsQueries >= before.DnsQueries + 1);
    }

    [Fact]
    public async Task Forward_relays_to_a_guest_loopback_listener_and_refuses_a_closed_port()
    {
        await fixture.ShAsync("(printf 'from-guest-server' | nc -l -p 7070 >/tmp/fwd-in) >/dev/null 2>&1 &");
        await Poll.UntilAsync(async () => (await fixture.ShAsync("netstat -ltn | grep -q ':7070 '")).Exit == 0, TimeSpan.FromSeconds(10), "the guest listener on 7070");
        await using (Stream s = await fixture.Vm.Agent.ForwardAsync(7070))
        {
            await s.WriteAsync("from-host"u8.ToArray());
            var buf = new byte[64];
            int n, total = 0;
            while ((n = await s.ReadAsync(buf.AsMemory(total))) > 0) total += n;
            Assert.Equal("from-guest-server", System.Text.Encoding.ASCII.GetString(buf, 0, total));
        }
        var e = await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(() => fixture.Vm.Agent.ForwardAsync(7071));
        Assert.Contains("nothing listens", e.Message);
    }
}

/// <summary>Root in the guest removes the capture, its routes and the dummy device: nothing gets out, nothing reaches the host.</summary>
public sealed class GuestNetworkFlushTests(FlushedVm fixture) : IClassFixture<FlushedVm>
{
    [Fact]
    public async Task Isolated_after_a_root_flush_reaches_nothing()
    {
        // Root flushes routes and deletes the dummy device; the agent's isolated mode removes its nf_tables table.
        var (flush, _, err) = await fixture.ShAsync("ip route flush table main; ip -6 route flush table main; ip link del dummy0; echo done");
        Assert.True(flush == 0, err);
        await fixture.Vm.Agent.SetUpNetworkAsync(NetworkInfo.ModeIsolated);
        var (exit, _, _) = await fixture.ShAsync($"printf x | nc -w 3 {StandInBroker.Address} {StandInBroker.EchoPort}; wget -q -O - http://{StandInBroker.Address}:{StandInBroker.HttpPort}/");
        Assert.NotEqual(0, exit);
        var (_, ifaces, _) = await fixture.ShAsync("ls /sys/class/net | tr '\\n' ' '");
        Assert.Equal("lo ", ifaces);
        Assert.Empty(fixture.Broker.EgressRequests);
        Assert.Equal(0, (await fixture.Vm.Agent.NetStatsAsync()).CapturedConnections);
    }
}

/// <summary>An isolated guest: loopback only, nothing captured, no resolver written, no path to the host broker.</summary>
public sealed class IsolatedNetworkTests(IsolatedVm fixture) : IClassFixture<IsolatedVm>
{
    [Fact]
    public async Task Isolated_has_loopback_only_and_captures_nothing()
    {
        var (exit, _, stderr) = await fixture.ShAsync($"printf x | nc {StandInBroker.Address} {StandInBroker.EchoPort}");
        Assert.NotEqual(0, exit);
        Assert.Contains("unreachable", stderr, StringComparison.OrdinalIgnoreCase);
        var (_, ifaces, _) = await fixture.ShAsync("ls /sys/class/net | tr '\\n' ' '");
        Assert.Equal("lo ", ifaces);
        Assert.DoesNotContain("nameserver 127.0.0.1", (await fixture.ShAsync("cat /etc/resolv.conf 2>/dev/null || true")).Out);
        var (loop, _, _) = await fixture.ShAsync("ping -c 1 -W 2 127.0.0.1");
        Assert.Equal(0, loop); // loopback is up
        Assert.Empty(fixture.Broker.EgressRequests);
        NetStats stats = await fixture.Vm.Agent.NetStatsAsync();
        Assert.Equal(0, stats.CapturedConnections);
        Assert.Equal(0, stats.DroppedPackets);
    }
}
