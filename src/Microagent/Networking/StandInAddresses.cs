using System.Net;
using System.Net.Sockets;

namespace Microagent.Networking;

/// <summary>One stand-in handed to the guest: the guest-routable <paramref name="Address"/> it resolved <paramref name="Name"/> to,
/// and the <paramref name="Real"/> address the host knows the name by.</summary>
/// <param name="Address">The stand-in (in <see cref="StandInAddresses.Range"/>).</param>
/// <param name="Real">The real address (host loopback).</param>
/// <param name="Name">The name whose answer it stands in for.</param>
internal sealed record StandIn(IPAddress Address, IPAddress Real, string Name);

/// <summary>
/// Stand-in addresses (docs/ARCHITECTURE.md "Networking"): the guest cannot route to the host's loopback (127.0.0.0/8 and ::1
/// are its own, and its capture leaves 127/8 alone), so a DNS answer that is a host-loopback address (an <c>--add-host</c>
/// entry, or the host's own resolution) is handed to the guest as an address from 198.18.0.0/15 (RFC 2544, never a real
/// destination; the capture redirects it). One table per workspace: stand-in → (real address, name), one stand-in per
/// (real, name) pair, so two names on one address are still decided by their own names. The broker translates a connection to a
/// stand-in back before <see cref="EgressPolicy"/> decides; a stand-in never handed out translates to nothing and is refused.
/// </summary>
internal sealed class StandInAddresses
{
    /// <summary>The range stand-ins come from (RFC 2544 benchmarking, 198.18.0.0/15).</summary>
    public static readonly EgressRule Range = EgressRule.Parse("198.18.0.0/15");

    /// <summary>At most this many stand-ins per workspace (198.18.0.1 to 198.19.0.0); further answers fail.</summary>
    public const int Capacity = 65536;

    private static readonly uint First = 0xC6120000; // 198.18.0.0
    private readonly Lock _gate = new();
    private readonly Dictionary<(IPAddress Real, string Name), StandIn> _byTarget = [];
    private readonly Dictionary<IPAddress, StandIn> _byAddress = [];

    /// <summary>True for an address the guest cannot reach the host by: host loopback (127.0.0.0/8, ::1, and their IPv4-mapped forms).</summary>
    public static bool Needs(IPAddress ip)
    {
        var a = AddressClass.Unwrap(ip);
        return a.AddressFamily == AddressFamily.InterNetwork ? a.GetAddressBytes()[0] == 127 : IPAddress.IPv6Loopback.Equals(a);
    }

    /// <summary>True for an address in <see cref="Range"/>.</summary>
    public static bool InRange(IPAddress ip) => Range.MatchesIp(AddressClass.Unwrap(ip));

    /// <summary>The stand-in for <paramref name="real"/> known as <paramref name="name"/> (the same one each time); null when the table is full.</summary>
    public IPAddress? For(IPAddress real, string name)
    {
        var key = (AddressClass.Unwrap(real), name);
        lock (_gate)
        {
            if (_byTarget.TryGetValue(key, out var known)) return known.Address;
            if (_byAddress.Count >= Capacity) return null;
            uint n = First + (uint)_byAddress.Count + 1;
            var address = new IPAddress([(byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n]);
            var s = new StandIn(address, key.Item1, name);
            _byTarget[key] = s;
            _byAddress[address] = s;
            return address;
        }
    }

    /// <summary>What <paramref name="address"/> stands in for, or null when it was never handed out.</summary>
    public StandIn? Lookup(IPAddress address)
    {
        var a = AddressClass.Unwrap(address);
        lock (_gate) return _byAddress.GetValueOrDefault(a);
    }
}
