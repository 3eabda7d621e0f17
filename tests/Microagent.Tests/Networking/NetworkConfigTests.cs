using Microagent.Networking;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Tests.Networking;

public sealed class NetworkConfigTests
{
    [Theory]
    [InlineData("8080:80", "127.0.0.1", 8080, 80)]
    [InlineData("8080:80/tcp", "127.0.0.1", 8080, 80)]
    [InlineData("0.0.0.0:8443:443", "0.0.0.0", 8443, 443)]
    [InlineData("[::1]:9000:90/TCP", "::1", 9000, 90)]
    public void Published_ports_parse_with_loopback_as_the_default_host(string text, string host, int hostPort, int guestPort)
    {
        var p = PublishedPort.Parse(text);
        Assert.Equal((host, hostPort, guestPort), (p.HostAddress, p.HostPort, p.GuestPort));
        Assert.Equal(p, PublishedPort.Parse(p.ToString()));
    }

    [Theory]
    [InlineData("80")]
    [InlineData("8080:0")]
    [InlineData("70000:80")]
    [InlineData("host.example:8080:80")]
    [InlineData("8080:80/udp")]
    [InlineData("a:b")]
    public void Bad_published_ports_name_the_field(string text)
    {
        var e = Assert.Throws<WorkspaceSpecException>(() => PublishedPort.Parse(text));
        Assert.Equal("publish", e.Field);
    }

    [Fact]
    public void Host_entries_are_name_colon_ipv4()
    {
        Assert.Equal(new HostEntry("allowed.test", "127.0.0.2"), HostEntry.Parse("Allowed.Test.:127.0.0.2"));
        foreach (string bad in new[] { "noip", "name:", "name:::1", "-bad-:1.2.3.4", ":1.2.3.4", "x:999.1.1.1" })
            Assert.Equal("add_host", Assert.Throws<WorkspaceSpecException>(() => HostEntry.Parse(bad)).Field);
    }

    [Fact]
    public void The_default_is_user_with_256_connections_and_nothing_published()
    {
        var c = new NetworkSpec().Resolve();
        Assert.Equal((NetworkInfo.ModeUser, 256, 0, false), (c.Mode, c.MaxConnections, c.Publish.Count, c.LockAllowlist));
        Assert.Null(c.MaxTotalBytes);
        Assert.Equal("user (default policy)", c.ToString());
    }

    [Fact]
    public void Isolated_refuses_published_ports_and_none_means_isolated()
    {
        var e = Assert.Throws<WorkspaceSpecException>(() => new NetworkSpec { Mode = "isolated", Publish = [PublishedPort.Parse("8080:80")] }.Resolve());
        Assert.Equal("publish", e.Field);
        Assert.Equal(NetworkInfo.ModeIsolated, new NetworkSpec { Mode = "none" }.Resolve().Mode);
        Assert.Contains("never shares", Assert.Throws<WorkspaceSpecException>(() => new NetworkSpec { Mode = "host" }.Resolve()).Message);
        Assert.Equal("network", Assert.Throws<WorkspaceSpecException>(() => new NetworkSpec { Mode = "bridge" }.Resolve()).Field);
    }

    [Fact]
    public void A_start_override_applies_over_the_stored_config()
    {
        var stored = new NetworkSpec { EgressAllow = ["pypi.org"], Publish = [PublishedPort.Parse("8080:80")], MaxConnections = 10 }.Resolve();
        var isolated = new NetworkSpec { Mode = "isolated" }.Resolve(stored);
        Assert.Equal((NetworkInfo.ModeIsolated, 0, 10), (isolated.Mode, isolated.Publish.Count, isolated.MaxConnections));
        var other = new NetworkSpec { Publish = [PublishedPort.Parse("9090:90")] }.Resolve(stored);
        Assert.Equal([PublishedPort.Parse("9090:90")], other.Publish);
        Assert.Equal(["pypi.org"], other.EgressAllow);
    }

    [Fact]
    public void Caps_are_checked()
    {
        Assert.Equal("egress_max_conns", Assert.Throws<WorkspaceSpecException>(() => new NetworkSpec { MaxConnections = 0 }.Resolve()).Field);
        Assert.Equal("egress_max_total_bytes", Assert.Throws<WorkspaceSpecException>(() => new NetworkSpec { MaxTotalBytes = 0 }.Resolve()).Field);
        Assert.Equal("publish", Assert.Throws<WorkspaceSpecException>(() =>
            new NetworkSpec { Publish = [PublishedPort.Parse("8080:80"), PublishedPort.Parse("8080:81")] }.Resolve()).Field);
    }

    [Fact]
    public void A_policy_file_gives_the_same_rules_and_flags_add_to_it()
    {
        var policy = EgressPolicyFile.Parse("""
            allow: [pypi.org, .pythonhosted.org, 203.0.113.0/24]
            lock-allowlist: true
            addHosts: { allowed.test: 127.0.0.2 }
            maxConns: 8
            maxTotalBytes: 1048576
            """);
        var c = new NetworkSpec { Policy = policy, EgressAllow = ["github.com"], MaxConnections = 4 }.Resolve();
        Assert.Equal(["pypi.org", ".pythonhosted.org", "203.0.113.0/24", "github.com"], c.EgressAllow);
        Assert.True(c.LockAllowlist);
        Assert.Equal([new HostEntry("allowed.test", "127.0.0.2")], c.AddHosts);
        Assert.Equal((4, 1048576L), (c.MaxConnections, c.MaxTotalBytes!.Value));
    }

    [Fact]
    public void Unknown_policy_keys_are_errors_with_the_line()
    {
        var e = Assert.Throws<WorkspaceSpecException>(() => EgressPolicyFile.Parse("allow: [a.example]\nallwo: [b.example]\n", "p.yaml"));
        Assert.Contains("p.yaml:2", e.Message);
        Assert.Contains("allwo", e.Message);
        Assert.Equal("egress_policy", e.Field);
        Assert.Throws<WorkspaceSpecException>(() => EgressPolicyFile.Parse("{\"allow\": [\"a.example\"], \"mode\": \"user\"}"));
    }

    [Fact]
    public void The_spec_file_takes_network_as_a_mode_or_a_mapping()
    {
        Assert.Equal("isolated", WorkspaceSpecFile.Parse("network: isolated").Network!.Mode);
        var spec = WorkspaceSpecFile.Parse("""
            network:
              mode: user
              allow: [allowed.test]
              add-hosts: [allowed.test:127.0.0.2]
              publish: ["8080:80"]
            """);
        var c = spec.Network!.Resolve();
        Assert.Equal(["allowed.test"], c.EgressAllow);
        Assert.Equal((1, 8080), (c.AddHosts.Count, c.Publish[0].HostPort));
        Assert.Contains("network.bogus", Assert.Throws<WorkspaceSpecException>(() => WorkspaceSpecFile.Parse("network:\n  bogus: 1")).Message);
    }

    [Fact]
    public void Network_vsock_ports_are_reserved()
    {
        Assert.Throws<WorkspaceSpecException>(() => VsockMapping.Parse($"{NetworkInfo.EgressPort}=8080"));
        Assert.Throws<WorkspaceSpecException>(() => VsockMapping.Parse($"{NetworkInfo.DnsPort}=8080"));
    }
}
