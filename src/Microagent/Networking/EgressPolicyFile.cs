using System.Globalization;
using Microagent.Workspaces;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Microagent.Networking;

/// <summary>
/// An egress policy file (<c>--egress-policy FILE</c>; YAML or JSON, which is YAML): the same rules as the flags.
/// Keys (camelCase or kebab-case): <c>allow</c> (list of HOST, .SUFFIX, IP, CIDR), <c>lockAllowlist</c> (bool),
/// <c>addHosts</c> (list of NAME:IP, or a map NAME: IP), <c>maxConns</c>, <c>maxTotalBytes</c>. Unknown keys are errors.
/// Walked as YAML nodes (no reflection: NativeAOT-safe).
/// </summary>
internal static class EgressPolicyFile
{
    private const string Keys = "keys: allow, lockAllowlist, addHosts, maxConns, maxTotalBytes";

    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    public static NetworkSpec Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WorkspaceSpecException($"cannot read the egress policy {path}: {e.Message}") { Field = "egress_policy" };
        }
        return Parse(text, path);
    }

    /// <summary>Parses policy text; <paramref name="source"/> names it in errors.</summary>
    public static NetworkSpec Parse(string text, string source = "egress policy")
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw Error(source, e.Start.Line, (e.InnerException ?? e).Message); }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" }) return new NetworkSpec();
        if (stream.Documents[0].RootNode is not YamlMappingNode root) throw Error(source, stream.Documents[0].RootNode.Start.Line, "the policy must be a mapping");
        return FromNode(root, source, inSpec: false);
    }

    /// <summary>
    /// The <c>network:</c> value of a workspace spec: a mode (<c>network: isolated</c>) or a mapping of the policy keys plus
    /// <c>mode</c>, <c>publish</c> (list of [HOST:]HOSTPORT:GUESTPORT) and <c>policy</c> (a policy file, relative to the spec's directory).
    /// </summary>
    public static NetworkSpec FromSpecNode(YamlNode node, string source) => node switch
    {
        YamlScalarNode s => new NetworkSpec { Mode = s.Value },
        YamlMappingNode m => FromNode(m, source, inSpec: true),
        _ => throw Error(source, node.Start.Line, "network must be a mode (user, isolated) or a mapping"),
    };

    private static NetworkSpec FromNode(YamlMappingNode root, string source, bool inSpec)
    {
        var spec = new NetworkSpec();
        foreach (var (k, v) in root.Children)
        {
            string key = Scalar(source, k);
            string canonical = Canonical(key);
            if (inSpec && canonical is "mode" or "publish" or "policy")
            {
                spec = canonical switch
                {
                    "mode" => spec with { Mode = Scalar(source, v) },
                    "publish" => spec with { Publish = [.. List(source, v).Select(PublishedPort.Parse)] },
                    _ => spec with { Policy = Load(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(source)) ?? ".", Scalar(source, v))) },
                };
                continue;
            }
            spec = canonical switch
            {
                "allow" => spec with { EgressAllow = List(source, v) },
                "lockAllowlist" => spec with { LockAllowlist = Bool(source, v) },
                "addHosts" => spec with { AddHosts = v is YamlMappingNode m
                    ? [.. m.Children.Select(kv => HostEntry.Parse($"{Scalar(source, kv.Key)}:{Scalar(source, kv.Value)}"))]
                    : [.. List(source, v).Select(HostEntry.Parse)] },
                "maxConns" => spec with { MaxConnections = (int)Number(source, v, int.MaxValue) },
                "maxTotalBytes" => spec with { MaxTotalBytes = Number(source, v, long.MaxValue) },
                _ => throw Error(source, k.Start.Line, $"unknown key '{(inSpec ? "network." : "")}{key}'"),
            };
        }
        return spec;
    }

    private static List<string> List(string source, YamlNode node) => node switch
    {
        YamlSequenceNode seq => [.. seq.Children.Select(n => Scalar(source, n))],
        YamlScalarNode { Value: null or "" } => [],
        _ => throw Error(source, node.Start.Line, "expected a list"),
    };

    private static string Scalar(string source, YamlNode node) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw Error(source, node.Start.Line, "expected a single value here");

    private static long Number(string source, YamlNode node, long max) =>
        long.TryParse(Scalar(source, node), NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v <= max
            ? v : throw Error(source, node.Start.Line, $"'{Scalar(source, node)}' is not a whole number");

    private static bool Bool(string source, YamlNode node) => Scalar(source, node).ToLowerInvariant() switch
    {
        "true" or "yes" or "on" => true,
        "false" or "no" or "off" => false,
        var v => throw Error(source, node.Start.Line, $"'{v}' is not true or false"),
    };

    private static string Canonical(string key)
    {
        if (!key.Contains('-')) return key;
        var parts = key.Split('-');
        return parts[0] + string.Concat(parts.Skip(1).Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));
    }

    private static WorkspaceSpecException Error(string source, long line, string message) =>
        new($"{source}:{line}: {message}", Keys) { Field = "egress_policy" };
}
