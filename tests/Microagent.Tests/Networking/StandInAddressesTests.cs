using System.Net;
using Microagent.Networking;

namespace Microagent.Tests.Networking;

public sealed class StandInAddressesTests
{
    private static IPAddress Ip(string s) => IPAddress.Parse(s);

    [Fact]
    public void Host_loopback_needs_a_stand_in_and_nothing_else_does()
    {
        foreach (string s in new[] { "127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.3", "::127.0.0.3" })
            Assert.True(StandInAddresses.Needs(Ip(s)), s);
        foreach (string s in new[] { "10.0.0.1", "192.0.2.1", "198.18.0.1", "0.0.0.0", "::", "2001:db8::1", "fe80::1" })
            Assert.False(StandInAddresses.Needs(Ip(s)), s);
    }

    [Fact]
    public void Stand_ins_are_handed_out_in_order_once_per_address_and_name_and_map_back()
    {
        var t = new StandInAddresses();
        var a = t.For(Ip("127.0.0.2"), "a.test");
        Assert.Equal(Ip("198.18.0.1"), a);
        Assert.Equal(a, t.For(Ip("::ffff:127.0.0.2"), "a.test"));
        Assert.Equal(Ip("198.18.0.2"), t.For(Ip("127.0.0.2"), "b.test"));
        Assert.Equal(Ip("198.18.0.3"), t.For(Ip("127.0.0.3"), "a.test"));
        Assert.Equal(new StandIn(Ip("198.18.0.2"), Ip("127.0.0.2"), "b.test"), t.Lookup(Ip("::ffff:198.18.0.2")));
        Assert.Null(t.Lookup(Ip("198.18.0.4")));
        Assert.True(StandInAddresses.InRange(Ip("198.19.255.255")));
        Assert.False(StandInAddresses.InRange(Ip("198.20.0.0")));
    }

    [Fact]
    public void The_table_is_bounded_and_stays_in_range()
    {
        var t = new StandInAddresses();
        IPAddress? last = null;
        for (int i = 0; i < StandInAddresses.Capacity; i++) last = t.For(Ip("127.0.0.2"), $"n{i}.test");
        Assert.Equal(Ip("198.19.0.0"), last);
        Assert.True(StandInAddresses.InRange(last!));
        Assert.Null(t.For(Ip("127.0.0.2"), "one-more.test"));
        Assert.NotNull(t.For(Ip("127.0.0.2"), "n7.test"));
    }
}
