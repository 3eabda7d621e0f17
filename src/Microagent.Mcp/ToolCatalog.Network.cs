using System.Net;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Networking;

namespace Microagent.Mcp;

/// <summary>workspace_egress: one page of the egress audit.</summary>
/// <param name="Records">The decisions, oldest first.</param>
/// <param name="NextIndex">The index of the last record returned (pass as after_index for the next page).</param>
/// <param name="Total">Records in the audit.</param>
public sealed record EgressPage(IReadOnlyList<EgressRecord> Records, long NextIndex, long Total);

/// <summary>
/// The network arguments of workspace_create, workspace_start and workspace_run, and workspace_egress (docs/ARCHITECTURE.md
/// "Networking"). A model may narrow egress but never point it at the host's inside: an allow entry or a static host entry that
/// names an inside address (loopback, private, link-local, the host's own) and a published port on anything but loopback are
/// <c>policy_denied</c>; those are set by a person through the CLI.
/// </summary>
public sealed partial class ToolCatalog
{
    /// <summary>The network properties; <paramref name="policy"/> false = mode and published ports only (start).</summary>
    private static void AddNetworkProperties(JsonObject props, bool policy = true)
    {
        props["network"] = Schema.String("user (default: outbound TCP and DNS through the host's policy-checked egress broker) or isolated (loopback only).", "user", "isolated");
        props["publish"] = Schema.Strings("Published ports [127.0.0.1:]HOSTPORT:GUESTPORT[/tcp]: a host loopback listener bridged to the guest port.");
        if (!policy) return;
        props["egress_allow"] = Schema.Strings("Allow entries HOST, .SUFFIX, IP or CIDR (public addresses only through this server).");
        props["egress_lock_allowlist"] = Schema.Boolean("Only egress_allow destinations; other names get REFUSED from DNS.");
        props["egress_policy"] = Schema.String("A policy document (YAML or JSON: allow, lockAllowlist, addHosts, maxConns, maxTotalBytes), merged under the other arguments.");
        props["add_host"] = Schema.Strings("Static DNS answers NAME:IP (public addresses only through this server).");
        props["egress_max_conns"] = Schema.Integer($"Egress connections open at once (default {NetworkConfig.DefaultMaxConnections}).", 1, NetworkConfig.MaxMaxConnections);
        props["egress_max_total_bytes"] = Schema.Integer("Bytes egress may carry per boot, both ways.", 1);
    }

    /// <summary>The network part of a spec from the call's arguments, after the trust-boundary checks; null when none given.</summary>
    private static NetworkSpec? Network(ToolCall call)
    {
        var spec = new NetworkSpec
        {
            Mode = call.String("network"),
            EgressAllow = call.Strings("egress_allow"),
            LockAllowlist = call.Boolean("egress_lock_allowlist") ? true : null,
            AddHosts = [.. call.Strings("add_host").Select(HostEntry.Parse)],
            MaxConnections = (int?)call.Integer("egress_max_conns", 1, NetworkConfig.MaxMaxConnections),
            MaxTotalBytes = call.Integer("egress_max_total_bytes", 1),
            Publish = [.. call.Strings("publish").Select(PublishedPort.Parse)],
            Policy = call.String("egress_policy") is { } doc ? EgressPolicyFile.Parse(doc, "egress_policy") : null,
        };
        foreach (var s in new[] { spec, spec.Policy }.OfType<NetworkSpec>())
        {
            foreach (string a in s.EgressAllow)
                if (EgressRule.Parse(a) is { Network: { } net } rule && (AddressClass.IsInside(net) || rule.Kind == EgressRuleKind.Cidr && rule.PrefixLength < 8))
                    throw Denied($"egress allow entry {rule} reaches inside addresses", "egress_allow");
            foreach (var h in s.AddHosts)
                if (AddressClass.IsInside(IPAddress.Parse(h.Ip)))
                    throw Denied($"host entry {h} points at an inside address", "add_host");
        }
        foreach (var p in spec.Publish)
            if (!IPAddress.IsLoopback(IPAddress.Parse(p.HostAddress)))
                throw Denied($"published port {p} listens on {p.HostAddress}, not loopback", "publish");
        return spec.IsEmpty ? null : spec;
    }

    private static MicroagentException Denied(string what, string argument) =>
        new(ErrorKind.PolicyDenied, $"{what}: this MCP server does not let a tool call open the host's inside ({argument})",
            "use public destinations and loopback published ports here; a person can set such a policy with the CLI (microagent create --egress-allow/--add-host/--publish)")
        { Field = argument };

    private void AddNetworkTools()
    {
        Add("workspace_egress", "Workspace egress audit", ToolHints.Query,
            "The workspace's network decisions, oldest first: kind (connect, dns), verdict (allowed, refused), rule, name, ip, port, bytes_out, bytes_in, " +
            "duration_ms, end. No payloads. Page with after_index.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["limit"] = Schema.Integer("Most records to return (default 100).", 1, 10000),
                ["after_index"] = Schema.Integer("Return records with an index greater than this (default: from the first).", -1),
            }, "name"), McpJson.Context.EgressPage,
            async call =>
            {
                int limit = (int)(call.Integer("limit", 1, 10000) ?? 100);
                long after = call.Integer("after_index", -1) ?? -1;
                var records = new List<EgressRecord>();
                long index = -1, last = after;
                await foreach (var r in Workspaces.ReadEgressAsync(Name(call), follow: false, call.Cancellation).ConfigureAwait(false))
                {
                    index++;
                    if (index <= after || records.Count >= limit) continue;
                    records.Add(r);
                    last = index;
                }
                return new EgressPage(records, last, index + 1);
            });
    }
}
