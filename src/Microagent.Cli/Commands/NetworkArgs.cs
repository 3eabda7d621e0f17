using System.CommandLine;
using Microagent.Networking;

namespace Microagent.Cli.Commands;

/// <summary>
/// The network flags of create, run and start (docs/ARCHITECTURE.md "Networking"): parsing only; every rule is the
/// library's (<see cref="NetworkSpec.Resolve"/>, <see cref="EgressRule"/>, <see cref="PublishedPort"/>, <see cref="HostEntry"/>).
/// </summary>
internal sealed class NetworkArgs
{
    private readonly Option<string?> _mode = new("--network", "--net") { Description = "user (default: outbound TCP and DNS through the host's egress broker, policy-checked) or isolated (loopback only); `none` means isolated" };
    private readonly Option<string[]> _allow = new("--egress-allow") { Description = "Allow HOST, .SUFFIX, IP or CIDR (repeatable); an allowed name may reach an inside address only through the host's own resolution or --add-host", AllowMultipleArgumentsPerToken = false };
    private readonly Option<bool> _lock = new("--egress-lock-allowlist") { Description = "Only --egress-allow destinations; other names get REFUSED from DNS" };
    private readonly Option<string?> _policy = new("--egress-policy") { Description = "Policy file (YAML/JSON: allow, lockAllowlist, addHosts, maxConns, maxTotalBytes); flags add to it" };
    private readonly Option<string[]> _addHost = new("--add-host") { Description = "Static DNS answer NAME:IP for the guest (repeatable)", AllowMultipleArgumentsPerToken = false };
    private readonly Option<int?> _maxConns = new("--egress-max-conns") { Description = $"Egress connections open at once (default {NetworkConfig.DefaultMaxConnections}; beyond it refused without a dial)" };
    private readonly Option<long?> _maxBytes = new("--egress-max-total-bytes") { Description = "Bytes egress may carry per boot, both ways (the connection that crosses it is torn down; later ones refused)" };
    private readonly Option<string[]> _publish = new("--publish", "-p") { Description = "Publish [HOST:]HOSTPORT:GUESTPORT[/tcp]: a host listener (HOST default 127.0.0.1) bridged to the guest's port (repeatable)", AllowMultipleArgumentsPerToken = false };

    /// <summary>Adds the flags to <paramref name="command"/>; <paramref name="policyFlags"/> false leaves out the policy ones (start overrides mode and ports only).</summary>
    public static NetworkArgs AddTo(Command command, bool policyFlags = true)
    {
        var a = new NetworkArgs();
        command.Options.Add(a._mode);
        command.Options.Add(a._publish);
        if (policyFlags)
            foreach (var o in new Option[] { a._allow, a._lock, a._policy, a._addHost, a._maxConns, a._maxBytes }) command.Options.Add(o);
        return a;
    }

    /// <summary>The network part of the spec these flags give; null when none was given.</summary>
    public NetworkSpec? From(ParseResult r)
    {
        var spec = new NetworkSpec
        {
            Mode = r.GetValue(_mode),
            EgressAllow = r.GetValue(_allow) ?? [],
            LockAllowlist = r.GetValue(_lock) ? true : null,
            AddHosts = [.. (r.GetValue(_addHost) ?? []).Select(HostEntry.Parse)],
            MaxConnections = r.GetValue(_maxConns),
            MaxTotalBytes = r.GetValue(_maxBytes),
            Publish = [.. (r.GetValue(_publish) ?? []).Select(PublishedPort.Parse)],
            Policy = r.GetValue(_policy) is { } file ? EgressPolicyFile.Load(file) : null,
        };
        return spec.IsEmpty ? null : spec;
    }
}
