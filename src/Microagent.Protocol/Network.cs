using System.Text.Json.Serialization;

namespace Microagent.Protocol;

// Wire records of the guest's network path (docs/ARCHITECTURE.md "Networking"). The guest has no NIC: the agent
// captures outbound TCP and DNS inside the guest and carries each over vsock to the host, which decides.
//
//   egress (guest → host CID 2 port EgressPort), one connection per captured TCP connection:
//     guest: Frame(EgressRequest)  host: Frame(EgressVerdict); if Allowed, raw bytes both ways until either side closes.
//   dns (guest → host CID 2 port DnsPort), one connection per query:
//     guest: Frame(DnsExchange with the RFC 1035 query message)  host: Frame(DnsExchange with the answer message).
//   network set-up (host → guest AgentPort): Request{type:"network", network: NetworkSetup} → Response ok | error.
//   published ports (host → guest AgentPort): Request{type:"forward", forwardPort: N} → Response ok, then raw bytes
//     both ways between the host connection and the guest's 127.0.0.1:N; error if nothing listens there.
//   counters (host → guest AgentPort): Request{type:"net-stats"} → Response{type:"net-stats", netStats}.

/// <summary>vsock ports and modes of the guest's network path.</summary>
internal static class NetworkInfo
{
    /// <summary>Host vsock port (CID 2) the agent connects to for each captured outbound TCP connection.</summary>
    public const uint EgressPort = 1026;

    /// <summary>Host vsock port (CID 2) the agent connects to for each DNS query it relays.</summary>
    public const uint DnsPort = 1027;

    /// <summary>Mode <c>user</c>: outbound IPv4 TCP and DNS captured and carried to the host broker.</summary>
    public const string ModeUser = "user";

    /// <summary>Mode <c>isolated</c>: loopback only, no route out.</summary>
    public const string ModeIsolated = "isolated";
}

/// <summary>First frame of an egress connection: where the guest program tried to connect.</summary>
internal sealed class EgressRequest
{
    /// <summary>Original destination IPv4 address (from SO_ORIGINAL_DST), dotted quad.</summary>
    [JsonPropertyName("ip")] public string Ip { get; set; } = "";
    /// <summary>Original destination port.</summary>
    [JsonPropertyName("port")] public int Port { get; set; }
    /// <summary>Transport; only <c>tcp</c> today.</summary>
    [JsonPropertyName("proto")] public string Proto { get; set; } = "tcp";
}

/// <summary>The host's answer to an <see cref="EgressRequest"/>, sent after it dialled (allowed) or decided not to.</summary>
internal sealed class EgressVerdict
{
    /// <summary>True when the host dialled the destination and will relay bytes.</summary>
    [JsonPropertyName("allowed")] public bool Allowed { get; set; }
    /// <summary>Why it was refused (policy rule or dial failure); null when allowed.</summary>
    [JsonPropertyName("reason")] public string? Reason { get; set; }
}

/// <summary>One DNS message (RFC 1035 §4, without the TCP length prefix), query or answer.</summary>
internal sealed class DnsExchange
{
    /// <summary>The raw DNS message.</summary>
    [JsonPropertyName("message")] public byte[] Message { get; set; } = [];
}

/// <summary>What the host asks the agent to set up after boot (and again after a restore).</summary>
internal sealed class NetworkSetup
{
    /// <summary><see cref="NetworkInfo.ModeUser"/> or <see cref="NetworkInfo.ModeIsolated"/>.</summary>
    [JsonPropertyName("mode")] public string Mode { get; set; } = NetworkInfo.ModeUser;
}

/// <summary>Packets the guest could not send because no host path carries them (other UDP, ICMP, IPv6), and captured flows.</summary>
internal sealed class NetStats
{
    /// <summary>Packets dropped because nothing carries them (UDP other than DNS, ICMP, IPv6, …).</summary>
    [JsonPropertyName("droppedPackets")] public long DroppedPackets { get; set; }
    /// <summary>TCP connections captured and handed to the host broker since boot.</summary>
    [JsonPropertyName("capturedConnections")] public long CapturedConnections { get; set; }
    /// <summary>DNS queries relayed to the host since boot.</summary>
    [JsonPropertyName("dnsQueries")] public long DnsQueries { get; set; }
}

/// <summary>Source-generated JSON metadata for the network records: AOT-safe, no reflection.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(EgressRequest))]
[JsonSerializable(typeof(EgressVerdict))]
[JsonSerializable(typeof(DnsExchange))]
internal sealed partial class NetworkJson : JsonSerializerContext;
