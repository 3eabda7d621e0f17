using System.Collections.Concurrent;
using System.Net;

namespace Microagent.Networking;

/// <summary>One decision of the policy: the verdict, the rule that made it, and the name the address was known by.</summary>
/// <param name="Allowed">Dial (connect) or answer (DNS).</param>
/// <param name="Rule">Which rule decided (<see cref="EgressPolicy"/> lists them).</param>
/// <param name="Name">The name the host knows the address by (its own resolution or --add-host); null when none.</param>
/// <param name="Target">For a connection to a stand-in (<see cref="StandInAddresses"/>): the real address decided on and to dial; else null.</param>
internal sealed record EgressDecision(bool Allowed, string Rule, string? Name = null, IPAddress? Target = null);

/// <summary>
/// The egress policy of one workspace (docs/ARCHITECTURE.md "Networking"): the one place that says whether a destination
/// may be dialled and whether a name may be answered. Decided on the IP at connect time, before anything is dialled.
/// Rules, in order:
/// <list type="number">
/// <item><c>allow-ip</c>: an IP or CIDR allow entry covers the address (an explicit entry may name an inside address).</item>
/// <item><c>allow-name</c>: the host itself resolved an allowed name to this address for this workspace, or <c>--add-host</c>
///   maps an allowed name to it. This is the only way a name reaches an inside address; the guest's SNI or Host header
///   never counts (the broker never reads them).</item>
/// <item><c>inside:CLASS</c>: the address is inside (<see cref="AddressClass"/>): refused.</item>
/// <item><c>not-allowlisted</c>: the allowlist is locked and nothing above allowed it: refused.</item>
/// <item><c>default-public</c>: a public address, allowlist not locked: allowed.</item>
/// <item><c>test-guard</c>: with <see cref="LoopbackGuard"/> on, whatever the rules above allowed outside 127.0.0.0/8 is refused
///   (the broker logs it as an error); a refusal keeps its own rule, so tests see what the policy decided.</item>
/// </list>
/// A connection to a stand-in address (<see cref="StandInAddresses"/>, handed out by the DNS for a host-loopback answer) is
/// decided as a connection to the real address known by the stand-in's name only; a stand-in never handed out is refused
/// (<c>inside:unmapped-stand-in</c>) whatever the rules say.
/// A name may be answered (DNS) unless the allowlist is locked and no name rule covers it (<c>not-allowlisted</c> → REFUSED).
/// </summary>
internal sealed class EgressPolicy
{
    private readonly List<EgressRule> _rules;
    private readonly Func<IReadOnlySet<IPAddress>> _hostAddresses;
    private readonly Dictionary<string, IPAddress> _static = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<IPAddress, ConcurrentDictionary<string, byte>> _resolved = new();
    private readonly ConcurrentDictionary<IPAddress, List<string>> _staticByIp = new();

    /// <summary>Builds the policy of <paramref name="config"/>; <paramref name="hostAddresses"/> reads the host's own addresses (tests pass a fixed set).</summary>
    public EgressPolicy(NetworkConfig config, bool loopbackGuard, Func<IReadOnlySet<IPAddress>>? hostAddresses = null)
    {
        Config = config;
        LoopbackOnly = loopbackGuard;
        _rules = [.. config.EgressAllow.Select(EgressRule.Parse)];
        _hostAddresses = hostAddresses ?? AddressClass.HostAddresses;
        foreach (var h in config.AddHosts)
        {
            var ip = IPAddress.Parse(h.Ip);
            _static[h.Name] = ip;
            _staticByIp.GetOrAdd(ip, _ => []).Add(h.Name);
        }
    }

    /// <summary>This workspace's stand-in table (host-loopback answers as guest-routable addresses).</summary>
    public StandInAddresses StandIns { get; } = new();

    /// <summary>The config the rules came from.</summary>
    public NetworkConfig Config { get; }

    /// <summary>The test-only guard is on: nothing outside 127.0.0.0/8 is dialled or resolved.</summary>
    public bool LoopbackOnly { get; }

    /// <summary>The <c>--add-host</c> answer for <paramref name="name"/> (normalized), or null.</summary>
    public IPAddress? StaticAnswer(string name) => _static.GetValueOrDefault(name);

    /// <summary>May <paramref name="name"/> be answered? (Refused only when the allowlist is locked and no name rule covers it.)</summary>
    public EgressDecision DecideName(string name)
    {
        if (_rules.FirstOrDefault(r => r.MatchesName(name)) is { } rule) return new(true, $"allow-name {rule}", name);
        if (Config.LockAllowlist) return new(false, "not-allowlisted", name);
        return new(true, "default-name", name);
    }

    /// <summary>Remembers that the host itself resolved <paramref name="name"/> to <paramref name="ip"/> for this workspace.</summary>
    public void RecordResolution(string name, IPAddress ip) =>
        _resolved.GetOrAdd(AddressClass.Unwrap(ip), _ => new(StringComparer.Ordinal)).TryAdd(name, 0);

    /// <summary>Names the host knows <paramref name="ip"/> by: --add-host entries first, then its own resolutions.</summary>
    public IReadOnlyList<string> NamesOf(IPAddress ip)
    {
        var a = AddressClass.Unwrap(ip);
        var names = new List<string>();
        if (_staticByIp.TryGetValue(a, out var s)) names.AddRange(s);
        if (_resolved.TryGetValue(a, out var r)) names.AddRange(r.Keys.Where(n => !names.Contains(n)).Order(StringComparer.Ordinal));
        return names;
    }

    /// <summary>The address the guest is answered for <paramref name="real"/> known as <paramref name="name"/>: a stand-in when the
    /// guest cannot route to it (host loopback), else the address itself; null when no stand-in is left.</summary>
    public IPAddress? GuestAnswer(string name, IPAddress real) => StandInAddresses.Needs(real) ? StandIns.For(real, name) : AddressClass.Unwrap(real);

    /// <summary>The real address and name behind <paramref name="ip"/> as the guest sent it (a stand-in translated back), for audits.</summary>
    public (IPAddress Ip, string? Name) Translate(IPAddress ip)
    {
        var a = AddressClass.Unwrap(ip);
        return StandIns.Lookup(a) is { } s ? (s.Real, s.Name) : (a, NamesOf(a).FirstOrDefault());
    }

    /// <summary>May the guest's connection to <paramref name="ip"/> be dialled? Decided before any dial.</summary>
    public EgressDecision DecideConnect(IPAddress ip)
    {
        var a = AddressClass.Unwrap(ip);
        EgressDecision d;
        if (StandInAddresses.InRange(a))
        {
            if (StandIns.Lookup(a) is not { } s) return new(false, "inside:unmapped-stand-in");
            d = DecideByRules(s.Real, [s.Name]) with { Target = s.Real };
            a = s.Real;
        }
        else d = DecideByRules(a, NamesOf(a));
        return d.Allowed && LoopbackOnly && !LoopbackGuard.IsLoopbackV4(a) ? d with { Allowed = false, Rule = "test-guard" } : d;
    }

    private EgressDecision DecideByRules(IPAddress a, IReadOnlyList<string> names)
    {
        string? known = names.Count > 0 ? names[0] : null;
        if (_rules.FirstOrDefault(r => r.MatchesIp(a)) is { } ipRule) return new(true, $"allow-ip {ipRule}", known);
        foreach (string n in names)
            if (_rules.FirstOrDefault(r => r.MatchesName(n)) is { } nameRule) return new(true, $"allow-name {nameRule}", n);
        string cls = AddressClass.Classify(a, _hostAddresses());
        if (cls != AddressClass.Public) return new(false, $"inside:{cls}", known);
        if (Config.LockAllowlist) return new(false, "not-allowlisted", known);
        return new(true, "default-public", known);
    }
}

/// <summary>
/// The test-only guard (docs/ARCHITECTURE.md "Networking"): with <c>MICROAGENT_EGRESS_LOOPBACK_ONLY=1</c> in the supervisor's
/// environment (the test harness sets it) the broker dials and resolves nothing outside 127.0.0.0/8, so no test sends
/// traffic off the host; a refusal is logged as an error.
/// </summary>
internal static class LoopbackGuard
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "MICROAGENT_EGRESS_LOOPBACK_ONLY";

    /// <summary>True when the variable is <c>1</c>.</summary>
    public static bool FromEnvironment() => Environment.GetEnvironmentVariable(Variable) == "1";

    /// <summary>True for 127.0.0.0/8 (IPv4-mapped forms included).</summary>
    public static bool IsLoopbackV4(IPAddress ip)
    {
        var a = AddressClass.Unwrap(ip);
        return a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && a.GetAddressBytes()[0] == 127;
    }
}
