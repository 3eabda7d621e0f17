using System.Net;
using Microagent.Networking;

namespace Microagent.Tests.Networking;

public sealed class EgressPolicyTests
{
    private static readonly IReadOnlySet<IPAddress> Host = new HashSet<IPAddress> { IPAddress.Parse("203.0.113.9") };

    private static EgressPolicy Policy(NetworkSpec spec, bool guard = false) => new(spec.Resolve(), guard, () => Host);

    private static IPAddress Ip(string s) => IPAddress.Parse(s);

    [Fact]
    public void The_default_allows_public_and_denies_the_inside_by_class()
    {
        var p = Policy(new NetworkSpec());
        Assert.Equal(new EgressDecision(true, "default-public"), p.DecideConnect(Ip("8.8.8.8")));
        Assert.Equal("inside:loopback", p.DecideConnect(Ip("127.0.0.1")).Rule);
        Assert.Equal("inside:link-local", p.DecideConnect(Ip("169.254.169.254")).Rule);
        Assert.Equal("inside:private", p.DecideConnect(Ip("::ffff:192.168.0.1")).Rule);
        Assert.Equal("inside:host-address", p.DecideConnect(Ip("203.0.113.9")).Rule);
    }

    [Fact]
    public void An_inside_address_is_reached_only_through_add_host_for_an_allowed_name()
    {
        var p = Policy(new NetworkSpec
        {
            EgressAllow = ["allowed.test"],
            AddHosts = [HostEntry.Parse("allowed.test:127.0.0.2"), HostEntry.Parse("denied.test:127.0.0.3")],
        });
        Assert.Equal(new EgressDecision(true, "allow-name allowed.test", "allowed.test"), p.DecideConnect(Ip("127.0.0.2")));
        // denied.test is known (add-host) but not allowed: the address stays inside.
        Assert.Equal(new EgressDecision(false, "inside:loopback", "denied.test"), p.DecideConnect(Ip("127.0.0.3")));
        Assert.False(p.DecideConnect(Ip("127.0.0.1")).Allowed);
    }

    [Fact]
    public void A_stand_in_is_decided_as_its_real_address_by_its_own_name()
    {
        var p = Policy(new NetworkSpec
        {
            EgressAllow = ["allowed.test"],
            AddHosts = [HostEntry.Parse("allowed.test:127.0.0.2"), HostEntry.Parse("denied.test:127.0.0.2")],
        });
        var allowed = p.GuestAnswer("allowed.test", Ip("127.0.0.2"))!;
        var denied = p.GuestAnswer("denied.test", Ip("127.0.0.2"))!;
        Assert.NotEqual(allowed, denied); // one stand-in per (address, name): each is decided by its own name
        Assert.Equal(new EgressDecision(true, "allow-name allowed.test", "allowed.test", Ip("127.0.0.2")), p.DecideConnect(allowed));
        Assert.Equal(new EgressDecision(false, "inside:loopback", "denied.test", Ip("127.0.0.2")), p.DecideConnect(denied));
        Assert.Equal((Ip("127.0.0.2"), "denied.test"), p.Translate(Ip("::ffff:" + denied)));
        Assert.Equal(Ip("192.0.2.1"), p.GuestAnswer("x.test", Ip("192.0.2.1")));
    }

    [Fact]
    public void A_stand_in_never_handed_out_is_refused_whatever_the_rules_say()
    {
        var p = Policy(new NetworkSpec { EgressAllow = ["198.18.0.0/15"] });
        Assert.Equal(new EgressDecision(false, "inside:unmapped-stand-in"), p.DecideConnect(Ip("198.18.0.1")));
        Assert.Equal(new EgressDecision(false, "inside:unmapped-stand-in"), p.DecideConnect(Ip("198.19.255.254")));
    }

    [Fact]
    public void The_test_guard_judges_a_stand_in_by_its_real_address()
    {
        var p = Policy(new NetworkSpec { EgressAllow = ["allowed.test", "::1"] }, guard: true);
        var v6 = p.GuestAnswer("allowed.test", Ip("::1"))!;
        Assert.True(StandInAddresses.InRange(v6));
        Assert.Equal(("test-guard", Ip("::1")), (p.DecideConnect(v6).Rule, p.DecideConnect(v6).Target));
        Assert.True(p.DecideConnect(p.GuestAnswer("allowed.test", Ip("127.0.0.5"))!).Allowed);
    }

    [Fact]
    public void An_allowed_name_reaches_an_inside_address_the_host_resolved_for_it()
    {
        var p = Policy(new NetworkSpec { EgressAllow = [".corp.example"] });
        Assert.False(p.DecideConnect(Ip("10.9.9.9")).Allowed);
        p.RecordResolution("git.corp.example", Ip("10.9.9.9"));
        Assert.Equal(new EgressDecision(true, "allow-name .corp.example", "git.corp.example"), p.DecideConnect(Ip("10.9.9.9")));
        // A resolution of a name that is not allowed does not open its address.
        p.RecordResolution("other.example", Ip("10.1.1.1"));
        Assert.Equal(new EgressDecision(false, "inside:private", "other.example"), p.DecideConnect(Ip("10.1.1.1")));
    }

    [Fact]
    public void A_locked_allowlist_allows_only_its_names_and_addresses()
    {
        var p = Policy(new NetworkSpec { EgressAllow = ["pypi.org", "198.51.100.0/24"], LockAllowlist = true });
        Assert.Equal("not-allowlisted", p.DecideConnect(Ip("8.8.8.8")).Rule);
        Assert.True(p.DecideConnect(Ip("198.51.100.4")).Allowed);
        p.RecordResolution("pypi.org", Ip("151.101.0.223"));
        Assert.Equal("allow-name pypi.org", p.DecideConnect(Ip("151.101.0.223")).Rule);
        Assert.Equal(new EgressDecision(false, "not-allowlisted", "example.com"), p.DecideName("example.com"));
        Assert.True(p.DecideName("pypi.org").Allowed);
        Assert.True(Policy(new NetworkSpec()).DecideName("example.com").Allowed);
    }

    [Fact]
    public void An_explicit_address_entry_may_name_an_inside_address()
    {
        var p = Policy(new NetworkSpec { EgressAllow = ["10.0.0.5"] });
        Assert.Equal("allow-ip 10.0.0.5", p.DecideConnect(Ip("10.0.0.5")).Rule);
        Assert.False(p.DecideConnect(Ip("10.0.0.6")).Allowed);
    }

    [Fact]
    public void The_test_guard_refuses_whatever_else_would_leave_127_8()
    {
        var p = Policy(new NetworkSpec { EgressAllow = ["8.8.8.8", "allowed.test"], AddHosts = [HostEntry.Parse("allowed.test:127.0.0.2")] }, guard: true);
        Assert.Equal("test-guard", p.DecideConnect(Ip("8.8.8.8")).Rule);
        Assert.Equal("test-guard", p.DecideConnect(Ip("1.1.1.1")).Rule);
        Assert.Equal("inside:link-local", p.DecideConnect(Ip("169.254.169.254")).Rule);
        Assert.True(p.DecideConnect(Ip("127.0.0.2")).Allowed);
        Assert.True(LoopbackGuard.IsLoopbackV4(Ip("::ffff:127.0.0.9")));
        Assert.False(LoopbackGuard.IsLoopbackV4(Ip("::1")));
    }
}
