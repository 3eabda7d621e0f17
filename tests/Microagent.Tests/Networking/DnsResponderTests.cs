using System.Net;
using System.Net.Sockets;
using Microagent.Networking;

namespace Microagent.Tests.Networking;

public sealed class DnsResponderTests
{
    private readonly List<string> _asked = [];
    private readonly List<string> _log = [];

    private DnsResponder Responder(EgressPolicy policy) => new(policy, (name, _) =>
    {
        _asked.Add(name);
        return name == "gone.example" ? throw new SocketException((int)SocketError.HostNotFound)
            : Task.FromResult(new[] { IPAddress.Parse("10.20.30.40"), IPAddress.Parse("2001:db8::1") });
    }, _log.Add);

    private static EgressPolicy Policy(NetworkSpec spec, bool guard = false) => new(spec.Resolve(), guard, () => new HashSet<IPAddress>());

    private static async Task<(DnsOutcome Outcome, int Rcode, List<IPAddress> Addresses)> AskAsync(DnsResponder r, string name, ushort type = DnsWire.TypeA)
    {
        var o = await r.AnswerAsync(DnsWire.BuildQuery(42, name, type), CancellationToken.None);
        var (rcode, addrs) = DnsWire.ParseAnswer(o.Answer);
        return (o, rcode, addrs);
    }

    [Fact]
    public async Task Add_host_entries_answer_without_asking_the_host()
    {
        var r = Responder(Policy(new NetworkSpec { AddHosts = [HostEntry.Parse("allowed.test:127.0.0.2")] }));
        var (o, rcode, addrs) = await AskAsync(r, "ALLOWED.test");
        Assert.Equal((0, "198.18.0.1", "allowed"), (rcode, addrs.Single().ToString(), o.Verdict));
        Assert.Equal("127.0.0.2", o.Addresses.Single().ToString()); // the audit keeps the real address
        Assert.Contains("127.0.0.2 as stand-in 198.18.0.1", o.Rule);
        Assert.Empty(_asked);
    }

    [Fact]
    public async Task A_host_answer_in_loopback_is_a_stand_in_and_other_answers_are_unchanged()
    {
        var policy = Policy(new NetworkSpec { AddHosts = [HostEntry.Parse("lan.test:10.0.0.5")] });
        var r = new DnsResponder(policy, (_, _) => Task.FromResult(new[] { IPAddress.Parse("::ffff:127.0.0.9"), IPAddress.Parse("192.0.2.8") }));
        var (o, rcode, addrs) = await AskAsync(r, "local.example");
        Assert.Equal((0, "198.18.0.1,192.0.2.8", "127.0.0.9,192.0.2.8"), (rcode, string.Join(",", addrs), string.Join(",", o.Addresses)));
        Assert.Equal("10.0.0.5", (await AskAsync(r, "lan.test")).Addresses.Single().ToString());
        Assert.Equal(new StandIn(IPAddress.Parse("198.18.0.1"), IPAddress.Parse("127.0.0.9"), "local.example"), policy.StandIns.Lookup(addrs[0]));
    }

    [Fact]
    public async Task Host_answers_are_remembered_by_the_policy_and_ipv6_is_left_out()
    {
        var policy = Policy(new NetworkSpec { EgressAllow = ["svc.example"] });
        var (_, rcode, addrs) = await AskAsync(Responder(policy), "svc.example");
        Assert.Equal((0, "10.20.30.40"), (rcode, addrs.Single().ToString()));
        Assert.Equal(["svc.example"], policy.NamesOf(IPAddress.Parse("10.20.30.40")));
        Assert.True(policy.DecideConnect(IPAddress.Parse("10.20.30.40")).Allowed);
    }

    [Fact]
    public async Task A_locked_allowlist_answers_refused_for_other_names()
    {
        var r = Responder(Policy(new NetworkSpec { EgressAllow = ["svc.example"], LockAllowlist = true }));
        var (o, rcode, _) = await AskAsync(r, "other.example");
        Assert.Equal((DnsWire.Refused, "refused", "not-allowlisted"), (rcode, o.Verdict, o.Rule));
        Assert.Empty(_asked);
    }

    [Fact]
    public async Task Aaaa_is_empty_and_unknown_names_are_nxdomain()
    {
        var r = Responder(Policy(new NetworkSpec()));
        var (_, rcode, addrs) = await AskAsync(r, "svc.example", DnsWire.TypeAaaa);
        Assert.Equal((0, 0), (rcode, addrs.Count));
        Assert.Equal(DnsWire.NxDomain, (await AskAsync(r, "gone.example")).Rcode);
    }

    [Fact]
    public async Task The_test_guard_never_asks_the_host_resolver()
    {
        var r = Responder(Policy(new NetworkSpec { AddHosts = [HostEntry.Parse("far.test:192.0.2.1"), HostEntry.Parse("near.test:127.0.0.3")] }, guard: true));
        Assert.Equal(DnsWire.Refused, (await AskAsync(r, "example.com")).Rcode);
        Assert.Equal(DnsWire.Refused, (await AskAsync(r, "far.test")).Rcode);
        var near = (await AskAsync(r, "near.test")).Outcome;
        Assert.Equal(("allowed", "127.0.0.3"), (near.Verdict, near.Addresses.Single().ToString()));
        Assert.Empty(_asked);
        Assert.Equal(2, _log.Count(l => l.StartsWith("ERROR: MICROAGENT_EGRESS_LOOPBACK_ONLY", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_malformed_query_gets_formerr()
    {
        var bad = DnsWire.BuildQuery(9, "x.example", DnsWire.TypeA);
        bad[12] = 0xc0;
        var o = await Responder(Policy(new NetworkSpec())).AnswerAsync(bad, CancellationToken.None);
        Assert.Equal((DnsWire.FormErr, "refused"), (DnsWire.ParseAnswer(o.Answer).Rcode, o.Verdict));
    }
}
