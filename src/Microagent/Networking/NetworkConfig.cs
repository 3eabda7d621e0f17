using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Serialization;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Networking;

/// <summary>
/// A workspace's network (docs/ARCHITECTURE.md "Networking"), as stored in <c>config.json</c> and in each boot record: the
/// mode, the egress policy the host broker applies, the static host entries and the published ports. Every rule about
/// these values (defaults, ranges, what goes with what) lives here.
/// </summary>
public sealed record NetworkConfig
{
    /// <summary>Default of <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 256;
    /// <summary>Largest <see cref="MaxConnections"/> accepted (the vsock device caps guest connections at a similar order).</summary>
    public const int MaxMaxConnections = 4096;

    /// <summary><see cref="NetworkInfo.ModeUser"/> (default) or <see cref="NetworkInfo.ModeIsolated"/>.</summary>
    public string Mode { get; init; } = NetworkInfo.ModeUser;
    /// <summary>Allow entries: <c>HOST</c>, <c>.SUFFIX</c>, <c>IP</c> or <c>CIDR</c> (<see cref="EgressRule"/>).</summary>
    public IReadOnlyList<string> EgressAllow { get; init; } = [];
    /// <summary>Only the allowlist may be reached; other names get REFUSED from DNS.</summary>
    public bool LockAllowlist { get; init; }
    /// <summary>Static DNS answers (<c>--add-host NAME:IP</c>).</summary>
    public IReadOnlyList<HostEntry> AddHosts { get; init; } = [];
    /// <summary>Egress connections open at once; beyond it a connection is refused without a dial.</summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;
    /// <summary>Bytes (both ways, all connections) egress may carry per boot; null = unlimited.</summary>
    public long? MaxTotalBytes { get; init; }
    /// <summary>Host listeners bridged to guest ports.</summary>
    public IReadOnlyList<PublishedPort> Publish { get; init; } = [];

    /// <summary>The default: user mode, default policy, nothing published.</summary>
    public static NetworkConfig Default { get; } = new();

    /// <summary>True when the mode is <c>isolated</c> (no egress, no DNS, nothing published).</summary>
    [JsonIgnore] public bool IsIsolated => Mode == NetworkInfo.ModeIsolated;

    /// <summary>Throws <see cref="WorkspaceSpecException"/> (with the field) when the values do not go together.</summary>
    public NetworkConfig Validated()
    {
        if (Mode == "host")
            throw new WorkspaceSpecException("network mode 'host': a workspace never shares the host's network (it has no network interface at all)",
                "use user (outbound through the host's policy-checked egress broker; published ports for inbound), or reach one host service through a vsock mapping") { Field = "network" };
        if (Mode is not (NetworkInfo.ModeUser or NetworkInfo.ModeIsolated))
            throw new WorkspaceSpecException($"unknown network mode '{Mode}'", "use user (default) or isolated; there are no bridges to choose (a workspace has no network interface)") { Field = "network" };
        if (IsIsolated && Publish.Count > 0)
            throw new WorkspaceSpecException("an isolated workspace cannot publish ports", "drop the published ports, or use the user network") { Field = "publish" };
        if (MaxConnections is < 1 or > MaxMaxConnections)
            throw new WorkspaceSpecException($"egress connection cap {MaxConnections} is outside 1..{MaxMaxConnections}", $"default {DefaultMaxConnections}") { Field = "egress_max_conns" };
        if (MaxTotalBytes is < 1)
            throw new WorkspaceSpecException($"egress byte cap {MaxTotalBytes} must be positive", "give a byte count, e.g. 1073741824") { Field = "egress_max_total_bytes" };
        foreach (string a in EgressAllow) EgressRule.Parse(a);
        var seen = new HashSet<(string, int)>();
        foreach (var p in Publish)
            if (!seen.Add((p.HostAddress, p.HostPort)))
                throw new WorkspaceSpecException($"host port {p.HostAddress}:{p.HostPort} is published twice", "publish each host port once") { Field = "publish" };
        return this;
    }

    /// <summary>One line for status: the mode, the policy and the published ports.</summary>
    public override string ToString()
    {
        if (IsIsolated) return "isolated (loopback only)";
        string policy = EgressAllow.Count == 0 ? "default policy" : $"{(LockAllowlist ? "allowlist only" : "default policy + allow")} {string.Join(",", EgressAllow)}";
        string pub = Publish.Count == 0 ? "" : $"; published {string.Join(", ", Publish)}";
        return $"user ({policy}{pub})";
    }
}

/// <summary>A static DNS answer: <paramref name="Name"/> resolves to <paramref name="Ip"/> (IPv4).</summary>
public sealed record HostEntry(string Name, string Ip)
{
    /// <summary>Parses Docker's <c>NAME:IP</c>; the name is lowercased.</summary>
    public static HostEntry Parse(string text)
    {
        string s = text.Trim();
        int colon = s.IndexOf(':');
        if (colon <= 0 || !IPAddress.TryParse(s.AsSpan(colon + 1), out var ip) || ip.AddressFamily != AddressFamily.InterNetwork)
            throw new WorkspaceSpecException($"host entry '{text}' is not NAME:IPV4", "example: --add-host api.internal:10.0.0.5") { Field = "add_host" };
        string name = DnsName.Normalize(s[..colon]) ?? throw new WorkspaceSpecException($"'{s[..colon]}' is not a DNS name", "letters, digits, '-' and '.'") { Field = "add_host" };
        return new HostEntry(name, ip.ToString());
    }

    /// <summary>The <c>NAME:IP</c> form.</summary>
    public override string ToString() => $"{Name}:{Ip}";
}

/// <summary>A published port: a host listener on <paramref name="HostAddress"/>:<paramref name="HostPort"/> bridged to the guest's 127.0.0.1:<paramref name="GuestPort"/>.</summary>
public sealed record PublishedPort(string HostAddress, int HostPort, int GuestPort)
{
    /// <summary>The address a port is published on unless another is named.</summary>
    public const string DefaultHostAddress = "127.0.0.1";

    /// <summary>Parses <c>[HOST:]HOSTPORT:GUESTPORT[/tcp]</c> (HOST an IP address; IPv6 in brackets).</summary>
    public static PublishedPort Parse(string text)
    {
        string s = text.Trim();
        int slash = s.LastIndexOf('/');
        if (slash >= 0)
        {
            if (!s[(slash + 1)..].Equals("tcp", StringComparison.OrdinalIgnoreCase))
                throw new WorkspaceSpecException($"published port '{text}': only tcp is carried", "drop the /udp suffix, or use /tcp") { Field = "publish" };
            s = s[..slash];
        }
        int last = s.LastIndexOf(':');
        if (last <= 0) throw Bad(text);
        int guest = Port(s[(last + 1)..], text);
        string head = s[..last];
        int mid = head.LastIndexOf(':');
        string host = DefaultHostAddress;
        string hostPortText = head;
        if (mid >= 0)
        {
            host = head[..mid].Trim('[', ']');
            hostPortText = head[(mid + 1)..];
            if (!IPAddress.TryParse(host, out var ip))
                throw new WorkspaceSpecException($"published port '{text}': '{host}' is not an IP address", "give an address such as 127.0.0.1 or 0.0.0.0") { Field = "publish" };
            host = ip.ToString();
        }
        return new PublishedPort(host, Port(hostPortText, text), guest);
    }

    /// <summary>The <c>HOST:HOSTPORT:GUESTPORT/tcp</c> form.</summary>
    public override string ToString() => $"{(HostAddress.Contains(':') ? $"[{HostAddress}]" : HostAddress)}:{HostPort}:{GuestPort}/tcp";

    private static int Port(string value, string text) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is >= 1 and <= 65535 ? p : throw Bad(text);

    private static WorkspaceSpecException Bad(string text) =>
        new($"published port '{text}' is not [HOST:]HOSTPORT:GUESTPORT[/tcp]", "example: -p 8080:80 (host 127.0.0.1:8080 → guest port 80)") { Field = "publish" };
}

/// <summary>
/// The network part of a spec or of one start's overrides: every field null or empty = keep what is below it. Resolved
/// into a <see cref="NetworkConfig"/> by <see cref="Resolve"/>.
/// </summary>
public sealed record NetworkSpec
{
    /// <summary>user or isolated.</summary>
    public string? Mode { get; init; }
    /// <summary>Allow entries added to the policy.</summary>
    public IReadOnlyList<string> EgressAllow { get; init; } = [];
    /// <summary>Allowlist only.</summary>
    public bool? LockAllowlist { get; init; }
    /// <summary>Static DNS answers.</summary>
    public IReadOnlyList<HostEntry> AddHosts { get; init; } = [];
    /// <summary>Connection cap.</summary>
    public int? MaxConnections { get; init; }
    /// <summary>Byte cap.</summary>
    public long? MaxTotalBytes { get; init; }
    /// <summary>Published ports (replace those below when non-empty).</summary>
    public IReadOnlyList<PublishedPort> Publish { get; init; } = [];
    /// <summary>A policy (<see cref="EgressPolicyFile"/>) merged under the fields above.</summary>
    public NetworkSpec? Policy { get; init; }

    /// <summary>True when nothing is set.</summary>
    [JsonIgnore] public bool IsEmpty => Mode is null && EgressAllow.Count == 0 && LockAllowlist is null && AddHosts.Count == 0 && MaxConnections is null
        && MaxTotalBytes is null && Publish.Count == 0 && Policy is null;

    /// <summary>Fields of <paramref name="o"/> that are set replace (lists: extend) this spec's.</summary>
    public NetworkSpec With(NetworkSpec? o) => o is null ? this : new()
    {
        Mode = o.Mode ?? Mode,
        EgressAllow = [.. EgressAllow, .. o.EgressAllow],
        LockAllowlist = o.LockAllowlist ?? LockAllowlist,
        AddHosts = [.. AddHosts, .. o.AddHosts],
        MaxConnections = o.MaxConnections ?? MaxConnections,
        MaxTotalBytes = o.MaxTotalBytes ?? MaxTotalBytes,
        Publish = o.Publish.Count > 0 ? o.Publish : Publish,
        Policy = Policy is null ? o.Policy : Policy.With(o.Policy),
    };

    /// <summary>The config this spec gives over <paramref name="below"/> (the stored config for a start; the default for a create), validated.</summary>
    public NetworkConfig Resolve(NetworkConfig? below = null)
    {
        var b = below ?? NetworkConfig.Default;
        var s = Policy is null ? this : Policy.With(this with { Policy = null });
        string mode = s.Mode?.Trim().ToLowerInvariant() switch { null => b.Mode, "none" => NetworkInfo.ModeIsolated, var m => m };
        // Switching to isolated for one boot drops the stored published ports (there is nothing to bridge them to).
        bool dropPorts = s.Mode is not null && mode == NetworkInfo.ModeIsolated && s.Publish.Count == 0;
        return new NetworkConfig
        {
            Mode = mode,
            EgressAllow = [.. b.EgressAllow, .. s.EgressAllow.Select(a => EgressRule.Parse(a).ToString())],
            LockAllowlist = s.LockAllowlist ?? b.LockAllowlist,
            AddHosts = [.. b.AddHosts.Where(h => !s.AddHosts.Any(n => n.Name == h.Name)), .. s.AddHosts],
            MaxConnections = s.MaxConnections ?? b.MaxConnections,
            MaxTotalBytes = s.MaxTotalBytes ?? b.MaxTotalBytes,
            Publish = s.Publish.Count > 0 ? s.Publish : dropPorts ? [] : b.Publish,
        }.Validated();
    }
}
