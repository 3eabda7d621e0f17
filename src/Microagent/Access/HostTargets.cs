using System.Globalization;
using System.Net;
using Microagent.Errors;

namespace Microagent.Access;

/// <summary>
/// One allowed host TCP target: <c>HOST:PORT</c> (an IP literal or a host name, matched exactly) or <c>CIDR:PORT</c>
/// (an IP literal in the range). IPv6 is written in brackets: <c>[::1]:8080</c>, <c>[fd00::/8]:80</c>.
/// </summary>
public sealed record HostTargetRule(string Host, IPNetwork? Network, int Port)
{
    /// <summary>Parses <c>HOST:PORT</c> or <c>CIDR:PORT</c>.</summary>
    public static HostTargetRule Parse(string text)
    {
        string t = text.Trim();
        int colon = t.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(t.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            throw Bad(text);
        string host = t[..colon];
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        else if (host.Contains(':')) throw Bad(text); // an IPv6 literal needs brackets, or its last group reads as the port
        if (host.Length == 0) throw Bad(text);
        if (host.Contains('/'))
            return IPNetwork.TryParse(host, out var network) ? new HostTargetRule(network.ToString(), network, port) : throw Bad(text);
        return new HostTargetRule(IPAddress.TryParse(host, out var ip) ? ip.ToString() : host.ToLowerInvariant(), null, port);
    }

    /// <summary>Whether a connection to <paramref name="host"/>:<paramref name="port"/> is this target.</summary>
    public bool Matches(string host, int port)
    {
        if (port != Port) return false;
        string h = host.Trim('[', ']');
        bool isIp = IPAddress.TryParse(h, out var ip);
        if (Network is { } n) return isIp && n.Contains(ip!);
        return isIp ? IPAddress.TryParse(Host, out var mine) && mine.Equals(ip) : string.Equals(Host, h, StringComparison.OrdinalIgnoreCase);
    }

    /// <inheritdoc />
    public override string ToString() => (Host.Contains(':') ? $"[{Host}]" : Host) + ":" + Port.ToString(CultureInfo.InvariantCulture);

    private static MicroagentException Bad(string text) =>
        MicroagentException.Invalid($"host target '{text}' is not HOST:PORT or CIDR:PORT", "examples: 127.0.0.1:8080, 127.0.0.0/8:5432, [::1]:9000");
}

/// <summary>
/// Which host TCP services guest connections may be relayed to (vsock mappings, the mediation channel): only the listed
/// <see cref="Rules"/>; an empty list allows none. A denial is <see cref="ErrorKind.PolicyDenied"/> naming the allowed
/// targets and carrying <see cref="Remediation"/>. Host names are compared as written, never resolved.
/// </summary>
public sealed class HostTargets(IReadOnlyList<HostTargetRule> rules, string remediation)
{
    /// <summary>The allowed targets.</summary>
    public IReadOnlyList<HostTargetRule> Rules { get; } = rules;

    /// <summary>What a denied caller is told to do.</summary>
    public string Remediation { get; } = remediation;

    /// <summary>Targets parsed from <c>HOST:PORT</c>/<c>CIDR:PORT</c> texts.</summary>
    public static HostTargets Parse(IEnumerable<string> texts, string remediation) => new([.. texts.Select(HostTargetRule.Parse)], remediation);

    /// <summary>Throws <see cref="ErrorKind.PolicyDenied"/> unless <paramref name="host"/>:<paramref name="port"/> is allowed; <paramref name="argument"/> names the input.</summary>
    public void Check(string host, int port, string argument)
    {
        if (Rules.Any(r => r.Matches(host, port))) return;
        string target = (host.Contains(':') ? $"[{host.Trim('[', ']')}]" : host) + ":" + port.ToString(CultureInfo.InvariantCulture);
        string allowed = Rules.Count == 0 ? "none are allowed" : "allowed: " + string.Join(", ", Rules);
        throw new MicroagentException(ErrorKind.PolicyDenied, $"host target {target} ({argument}) is not an allowed host target ({allowed})", Remediation)
        {
            Field = argument,
        };
    }
}
