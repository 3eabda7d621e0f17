using System.Globalization;
using Microagent.Mediation;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Microagent.Workspaces;

/// <summary>
/// Reads a workspace spec (<c>microagent.yaml</c>). Keys (camelCase or kebab-case both accepted):
/// <c>name, image, setup (string or list), exec, env (list of KEY=VALUE or a map), hostname, profile, memory, cpus,
/// sizeMib, ttl (a duration: seconds, 90s, 30m, 2h), shell, vsock (list of PORT=HOST:PORT), volumes (list of SRC:DST[:ro|rw]), mediation (map: enabled, required, port, target, failClosed),
/// network (user, isolated, or a map: mode, allow, lockAllowlist, addHosts, maxConns, maxTotalBytes, publish, policy)</c>.
/// Unknown keys are an error, so a typo is never silently ignored. The document is walked as YAML nodes (no
/// reflection), so this is safe under trimming and NativeAOT.
/// </summary>
public static class WorkspaceSpecFile
{
    private const string KnownKeys = "keys: name, image, setup, exec, env, hostname, profile, memory, cpus, sizeMib, ttl, shell, vsock, volumes, mediation (enabled, required, port, target, failClosed), network (mode, allow, lockAllowlist, addHosts, maxConns, maxTotalBytes, publish, policy)";

    /// <summary>Parses the file at <paramref name="path"/>; <see cref="WorkspaceSpecException"/> with the line on error.</summary>
    public static WorkspaceSpec Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WorkspaceSpecException($"cannot read the spec file {path}: {e.Message}");
        }
        return Parse(text, path);
    }

    /// <summary>Parses spec YAML text; <paramref name="source"/> names it in errors.</summary>
    public static WorkspaceSpec Parse(string yaml, string source = "microagent.yaml")
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e)
        {
            throw new WorkspaceSpecException($"{source}:{e.Start.Line}: {(e.InnerException ?? e).Message}", KnownKeys);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            return new WorkspaceSpec();
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw Error(source, stream.Documents[0].RootNode, "the spec must be a mapping of keys to values");

        var spec = new WorkspaceSpec();
        foreach (var (keyNode, value) in root.Children)
        {
            string key = Canonical(Scalar(source, keyNode));
            spec = key switch
            {
                "name" => spec with { Name = Scalar(source, value) },
                "image" => spec with { Image = Scalar(source, value) },
                "exec" => spec with { Exec = Scalar(source, value) },
                "hostname" => spec with { Hostname = Scalar(source, value) },
                "profile" => spec with { Profile = Scalar(source, value) },
                "memory" => spec with { MemoryMiB = Int(source, value) },
                "cpus" => spec with { Cpus = Int(source, value) },
                "sizeMib" => spec with { SizeMiB = Int(source, value) },
                "ttl" => spec with { TtlSeconds = Ttl(source, value) },
                "shell" => spec with { Shell = Scalar(source, value) },
                "setup" => spec with { Setup = value is YamlScalarNode ? [Scalar(source, value)] : StringList(source, value, "setup must be a string or a list of strings") },
                "env" => spec with { Env = Env(source, value) },
                "vsock" => spec with { Vsock = [.. StringList(source, value, "vsock must be a list of PORT=HOST:PORT").Select(VsockMapping.Parse)] },
                "volumes" => spec with { Disks = [.. StringList(source, value, "volumes must be a list of SRC:DST[:ro|rw]").Select(Volumes.DiskRequest.ParseVolume)] },
                "mediation" => spec with { Mediation = Mediation(source, value) },
                "network" => spec with { Network = Networking.EgressPolicyFile.FromSpecNode(value, source) },
                _ => throw Error(source, keyNode, $"unknown key '{Scalar(source, keyNode)}'"),
            };
        }
        return spec;
    }

    /// <summary><c>mediation:</c> defaults: enabled, required, port 2048, fail-closed; <c>target</c> is mandatory. Disabled = none.</summary>
    private static MediationConfig? Mediation(string source, YamlNode node)
    {
        if (node is not YamlMappingNode map) throw Error(source, node, "mediation must be a mapping (enabled, required, port, target, failClosed)");
        bool? enabled = null, required = null, failClosed = null;
        uint? port = null;
        string? target = null;
        foreach (var (keyNode, value) in map.Children)
        {
            switch (Canonical(Scalar(source, keyNode)))
            {
                case "enabled": enabled = Bool(source, value); break;
                case "required": required = Bool(source, value); break;
                case "failClosed": failClosed = Bool(source, value); break;
                case "target": target = Scalar(source, value); break;
                case "port":
                    port = uint.TryParse(Scalar(source, value), NumberStyles.None, CultureInfo.InvariantCulture, out uint p)
                        ? p : throw Error(source, value, "mediation.port must be a port number");
                    break;
                default: throw Error(source, keyNode, $"unknown key 'mediation.{Scalar(source, keyNode)}'");
            }
        }
        if (enabled == false) return null;
        if (string.IsNullOrWhiteSpace(target))
            throw new WorkspaceSpecException($"{source}: mediation.target is required", "example: target: 127.0.0.1:9900");
        return MediationConfig.Create(port ?? MediationConfig.DefaultPort, target, required ?? true, failClosed ?? true, enabled: true);
    }

    private static List<string> Env(string source, YamlNode node) => node switch
    {
        YamlSequenceNode => StringList(source, node, "env must be a list of KEY=VALUE or a map"),
        YamlMappingNode map => [.. map.Children.Select(kv => $"{Scalar(source, kv.Key)}={Scalar(source, kv.Value)}")],
        YamlScalarNode { Value: null or "" } => [],
        _ => throw Error(source, node, "env must be a list of KEY=VALUE or a map"),
    };

    private static List<string> StringList(string source, YamlNode node, string what) => node switch
    {
        YamlSequenceNode seq => [.. seq.Children.Select(n => n is YamlScalarNode ? Scalar(source, n) : throw Error(source, n, what))],
        YamlScalarNode { Value: null or "" } => [],
        _ => throw Error(source, node, what),
    };

    private static string Scalar(string source, YamlNode node) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw Error(source, node, "expected a single value here");

    private static int Int(string source, YamlNode node) =>
        int.TryParse(Scalar(source, node), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v)
            ? v : throw Error(source, node, $"'{Scalar(source, node)}' is not a whole number");

    /// <summary><c>ttl:</c> a duration (<see cref="Tools.Duration"/>), whole seconds rounded up.</summary>
    private static int Ttl(string source, YamlNode node) =>
        Tools.Duration.TryParse(Scalar(source, node), out var t, out string? why)
            ? (int)Math.Min(int.MaxValue, Math.Ceiling(t.TotalSeconds))
            : throw Error(source, node, $"ttl '{Scalar(source, node)}' is not a duration ({why}); give {Tools.Duration.Forms}");

    private static bool Bool(string source, YamlNode node) => Scalar(source, node).ToLowerInvariant() switch
    {
        "true" or "yes" or "on" => true,
        "false" or "no" or "off" => false,
        var v => throw Error(source, node, $"'{v}' is not true or false"),
    };

    /// <summary>kebab-case (<c>size-mib</c>, <c>fail-closed</c>) to the camelCase key (<c>sizeMib</c>, <c>failClosed</c>).</summary>
    private static string Canonical(string key)
    {
        if (!key.Contains('-')) return key;
        var parts = key.Split('-');
        return parts[0] + string.Concat(parts.Skip(1).Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));
    }

    private static WorkspaceSpecException Error(string source, YamlNode node, string message) =>
        new($"{source}:{node.Start.Line}: {message}", KnownKeys);
}
