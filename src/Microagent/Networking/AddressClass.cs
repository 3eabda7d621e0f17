using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Microagent.Networking;

/// <summary>
/// "The inside" (docs/ARCHITECTURE.md "Networking"): the addresses the default policy denies, by class. Ranges: RFC 6890
/// (special-purpose registries), RFC 1918 (private), RFC 6598 (CGNAT), RFC 3927 (link-local, where cloud metadata lives),
/// RFC 5771 (multicast), RFC 4193 (ULA), RFC 4291 (IPv6 loopback, link-local, multicast, IPv4-mapped), plus every address of
/// the host's own interfaces. IPv4-mapped and IPv4-compatible IPv6 forms are judged as the IPv4 address they carry.
/// </summary>
internal static class AddressClass
{
    /// <summary>Publicly routable (nothing below matched).</summary>
    public const string Public = "public";

    private static readonly (EgressRule Range, string Class)[] Inside =
    [
        (EgressRule.Parse("127.0.0.0/8"), "loopback"),
        (EgressRule.Parse("0.0.0.0/8"), "this-network"),
        (EgressRule.Parse("10.0.0.0/8"), "private"),
        (EgressRule.Parse("172.16.0.0/12"), "private"),
        (EgressRule.Parse("192.168.0.0/16"), "private"),
        (EgressRule.Parse("100.64.0.0/10"), "cgnat"),
        (EgressRule.Parse("169.254.0.0/16"), "link-local"),
        (EgressRule.Parse("192.0.0.0/24"), "special"),
        (EgressRule.Parse("198.18.0.0/15"), "benchmarking"),
        (EgressRule.Parse("224.0.0.0/4"), "multicast"),
        (EgressRule.Parse("240.0.0.0/4"), "reserved"),
        (EgressRule.Parse("::1/128"), "loopback"),
        (EgressRule.Parse("::/128"), "unspecified"),
        (EgressRule.Parse("fc00::/7"), "ula"),
        (EgressRule.Parse("fe80::/10"), "link-local"),
        (EgressRule.Parse("fec0::/10"), "site-local"),
        (EgressRule.Parse("ff00::/8"), "multicast"),
    ];

    /// <summary>The class of <paramref name="ip"/>: <see cref="Public"/>, or why it is inside (<c>loopback</c>, <c>private</c>, <c>host-address</c>, ...).</summary>
    public static string Classify(IPAddress ip, IReadOnlySet<IPAddress>? hostAddresses = null)
    {
        var a = Unwrap(ip);
        if (a.AddressFamily == AddressFamily.InterNetwork && a.Equals(IPAddress.Broadcast)) return "broadcast";
        foreach (var (range, cls) in Inside)
            if (range.MatchesIp(a)) return cls;
        if (a.AddressFamily == AddressFamily.InterNetworkV6 && !IsGlobalUnicastV6(a)) return "reserved";
        if ((hostAddresses ?? HostAddresses()).Contains(a)) return "host-address";
        return Public;
    }

    /// <summary>True for anything that is not <see cref="Public"/>.</summary>
    public static bool IsInside(IPAddress ip, IReadOnlySet<IPAddress>? hostAddresses = null) => Classify(ip, hostAddresses) != Public;

    /// <summary>The IPv4 address inside an IPv4-mapped (<c>::ffff:a.b.c.d</c>) or IPv4-compatible (<c>::a.b.c.d</c>) form; else the address.</summary>
    public static IPAddress Unwrap(IPAddress ip)
    {
        if (ip.IsIPv4MappedToIPv6) return ip.MapToIPv4();
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            byte[] b = ip.GetAddressBytes();
            if (b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0 && (b[12] | b[13]) != 0) return new IPAddress(b.AsSpan(12, 4));
            if (ip.ScopeId != 0) return new IPAddress(b); // fe80::1%eth0 compares as fe80::1
        }
        return ip;
    }

    /// <summary>2000::/3 is the only IPv6 global unicast space handed out (RFC 4291 §2.4).</summary>
    private static bool IsGlobalUnicastV6(IPAddress a) => (a.GetAddressBytes()[0] & 0xE0) == 0x20;

    /// <summary>Every unicast address of the host's own interfaces (read each time: interfaces come and go).</summary>
    public static IReadOnlySet<IPAddress> HostAddresses()
    {
        var set = new HashSet<IPAddress>();
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
                foreach (var u in nic.GetIPProperties().UnicastAddresses)
                    set.Add(Unwrap(u.Address));
        }
        catch (NetworkInformationException) { }
        return set;
    }
}
