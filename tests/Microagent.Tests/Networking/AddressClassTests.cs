using System.Net;
using Microagent.Networking;

namespace Microagent.Tests.Networking;

public sealed class AddressClassTests
{
    private static readonly IReadOnlySet<IPAddress> NoHost = new HashSet<IPAddress>();

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("127.255.1.2", "loopback")]
    [InlineData("0.0.0.0", "this-network")]
    [InlineData("10.1.2.3", "private")]
    [InlineData("172.16.0.1", "private")]
    [InlineData("172.31.255.255", "private")]
    [InlineData("192.168.1.1", "private")]
    [InlineData("100.64.0.1", "cgnat")]
    [InlineData("100.127.255.254", "cgnat")]
    [InlineData("169.254.169.254", "link-local")]
    [InlineData("224.0.0.251", "multicast")]
    [InlineData("239.255.255.250", "multicast")]
    [InlineData("255.255.255.255", "broadcast")]
    [InlineData("240.0.0.1", "reserved")]
    [InlineData("::1", "loopback")]
    [InlineData("::", "unspecified")]
    [InlineData("fd00::1", "ula")]
    [InlineData("fc00::1", "ula")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("ff02::1", "multicast")]
    [InlineData("::ffff:127.0.0.1", "loopback")]
    [InlineData("::ffff:169.254.169.254", "link-local")]
    [InlineData("::ffff:10.0.0.1", "private")]
    [InlineData("::127.0.0.1", "loopback")]
    [InlineData("64:ff9b::1", "reserved")]
    public void Inside_addresses_are_classified(string ip, string cls) =>
        Assert.Equal(cls, AddressClass.Classify(IPAddress.Parse(ip), NoHost));

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("1.1.1.1")]
    [InlineData("172.32.0.1")]
    [InlineData("100.128.0.1")]
    [InlineData("2606:4700::1111")]
    [InlineData("::ffff:8.8.8.8")]
    public void Public_addresses_are_public(string ip) =>
        Assert.Equal(AddressClass.Public, AddressClass.Classify(IPAddress.Parse(ip), NoHost));

    [Fact]
    public void The_hosts_own_addresses_are_inside()
    {
        var host = new HashSet<IPAddress> { IPAddress.Parse("203.0.113.9") };
        Assert.Equal("host-address", AddressClass.Classify(IPAddress.Parse("203.0.113.9"), host));
        Assert.Equal("host-address", AddressClass.Classify(IPAddress.Parse("::ffff:203.0.113.9"), host));
        Assert.Contains(IPAddress.Loopback, AddressClass.HostAddresses());
    }
}
