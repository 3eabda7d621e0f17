namespace Microagent.Networking;

/// <summary>What <c>status</c> reports about a running workspace's network (from its supervisor).</summary>
/// <param name="Mode">user or isolated.</param>
/// <param name="Published">Host ports listened on now (empty once severed or when isolated).</param>
/// <param name="Egress">The broker's counters (null when isolated).</param>
/// <param name="Severed">The network was severed (quarantine hook): no egress, no DNS, no published port until the next start.</param>
/// <param name="Policy">The policy in one line.</param>
public sealed record NetworkStatus(string Mode, IReadOnlyList<PublishedPort> Published, EgressCounters? Egress, bool Severed, string Policy);
