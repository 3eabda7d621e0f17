using System.Net;
using System.Net.Sockets;
using Microagent.Workspaces;

namespace Microagent.Networking;

/// <summary>DNS names as the policy compares them: lowercase, no trailing dot, RFC 1035 §2.3.1 labels (plus '_').</summary>
internal static class DnsName
{
    /// <summary>The normal form of <paramref name="name"/>, or null when it is not a DNS name.</summary>
    public static string? Normalize(string name)
    {
        string n = name.Trim().TrimEnd('.').ToLowerInvariant();
        if (n.Length is 0 or > 253) return null;
        foreach (string label in n.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-') return null;
            foreach (char c in label)
                if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_')) return null;
        }
        return n;
    }

    /// <summary>True when <paramref name="name"/> is <paramref name="suffix"/> or a name below it (suffix without its leading dot).</summary>
    public static bool IsAtOrBelow(string name, string suffix) =>
        name == suffix || (name.Length > suffix.Length && name.EndsWith(suffix, StringComparison.Ordinal) && name[^(suffix.Length + 1)] == '.');
}

/// <summary>The kind of an allow entry.</summary>
internal enum EgressRuleKind
{
    /// <summary>One name, exactly.</summary>
    Host,
    /// <summary><c>.example.com</c>: the name and every name below it.</summary>
    Suffix,
    /// <summary>One address.</summary>
    Ip,
    /// <summary>An address range.</summary>
    Cidr,
}

/// <summary>
/// One <c>--egress-allow</c> entry: <c>HOST</c>, <c>.SUFFIX</c>, <c>IP</c> or <c>CIDR</c> (docs/ARCHITECTURE.md "Networking").
/// Names match names the host resolved itself (or <c>--add-host</c>), never what a guest claims in SNI or Host.
/// </summary>
internal sealed record EgressRule(EgressRuleKind Kind, string Text, IPAddress? Network = null, int PrefixLength = 0)
{
    /// <summary>Parses an entry; <see cref="WorkspaceSpecException"/> (field egress_allow) when it is none of the four forms.</summary>
    public static EgressRule Parse(string text)
    {
        string s = text.Trim();
        int slash = s.IndexOf('/');
        if (slash > 0 && IPAddress.TryParse(s.AsSpan(0, slash), out var net) && int.TryParse(s.AsSpan(slash + 1), out int len)
            && len >= 0 && len <= (net.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            return new EgressRule(EgressRuleKind.Cidr, $"{Masked(net, len)}/{len}", Masked(net, len), len);
        if (IPAddress.TryParse(s, out var ip) && (s.Contains('.') || s.Contains(':')))
            return new EgressRule(EgressRuleKind.Ip, ip.ToString(), ip, ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
        if (s.StartsWith('.') && DnsName.Normalize(s[1..]) is { } suffix)
            return new EgressRule(EgressRuleKind.Suffix, "." + suffix);
        if (DnsName.Normalize(s) is { } host)
            return new EgressRule(EgressRuleKind.Host, host);
        throw new WorkspaceSpecException($"egress allow entry '{text}' is not HOST, .SUFFIX, IP or CIDR",
            "examples: pypi.org, .github.com, 203.0.113.7, 198.51.100.0/24") { Field = "egress_allow" };
    }

    /// <summary>True when this is a name rule that covers <paramref name="name"/> (normalized).</summary>
    public bool MatchesName(string name) => Kind switch
    {
        EgressRuleKind.Host => name == Text,
        EgressRuleKind.Suffix => DnsName.IsAtOrBelow(name, Text[1..]),
        _ => false,
    };

    /// <summary>True when this is an address rule that covers <paramref name="ip"/> (IPv4-mapped IPv6 compared as IPv4).</summary>
    public bool MatchesIp(IPAddress ip)
    {
        if (Network is null) return false;
        var a = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
        if (a.AddressFamily != Network.AddressFamily) return false;
        return Masked(a, PrefixLength).Equals(Network);
    }

    /// <summary>The normal form (what is stored).</summary>
    public override string ToString() => Text;

    /// <summary><paramref name="ip"/> with all but the first <paramref name="prefix"/> bits cleared.</summary>
    internal static IPAddress Masked(IPAddress ip, int prefix)
    {
        byte[] b = ip.GetAddressBytes();
        for (int i = 0; i < b.Length; i++)
        {
            int keep = Math.Clamp(prefix - i * 8, 0, 8);
            b[i] &= (byte)(0xFF << (8 - keep));
        }
        return new IPAddress(b);
    }
}
