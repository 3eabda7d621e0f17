namespace Microagent.Networking;

/// <summary>What <c>status</c> reports about a running workspace's network (from its supervisor).</summary>
/// <param name="Mode">user or isolated.</param>
/// <param name="Published">Host ports listened on now (empty once severed or when isolated).</param>
/// <param name="Egress">The broker's counters (null when isolated).</param>
/// <param name="Severed">The network was severed (quarantine hook): no egress, no DNS, no published port until the next start.</param>
/// <param name="Policy">The policy in one line.</param>
/// <param name="Guest">The guest's own counters (null when it did not answer: paused or busy).</param>
public sealed record NetworkStatus(string Mode, IReadOnlyList<PublishedPort> Published, EgressCounters? Egress, bool Severed, string Policy,
    GuestNetCounters? Guest = null);

/// <summary>What the guest counts on its side of the network path.</summary>
/// <param name="DroppedPackets">Packets nothing carries (UDP other than DNS, ICMP, IPv6), dropped in the guest.</param>
/// <param name="CapturedConnections">Outbound TCP connections captured and handed to the broker since boot.</param>
/// <param name="DnsQueries">DNS queries relayed to the host since boot.</param>
public sealed record GuestNetCounters(long DroppedPackets, long CapturedConnections, long DnsQueries);
