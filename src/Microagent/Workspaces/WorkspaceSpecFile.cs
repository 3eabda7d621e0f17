using Microagent.Mediation;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Microagent.Workspaces;

/// <summary>
/// Reads a workspace spec (<c>microagent.yaml</c>). Keys (camelCase or kebab-case both accepted):
/// <c>name, image, setup (string or list), exec, env (list of KEY=VALUE or a map), hostname, profile, memory, cpus,
/// sizeMib, ttl, vsock (list of PORT=HOST:PORT), mediation (map: enabled, required, port, target, failClosed)</c>. Unknown keys are an error, so a typo is never silently ignored.
/// </summary>
public static class WorkspaceSpecFile
{
    private sealed class Document
    {
        public string? Name { get; set; }
        public string? Image { get; set; }
        public object? Setup { get; set; }
        public string? Exec { get; set; }
        public object? Env { get; set; }
        public string? Hostname { get; set; }
        public string? Profile { get; set; }
        public int? Memory { get; set; }
        public int? Cpus { get; set; }
        public int? SizeMib { get; set; }
        public int? Ttl { get; set; }
        public List<string>? Vsock { get; set; }
        public MediationDocument? Mediation { get; set; }
    }

    private sealed class MediationDocument
    {
        public bool? Enabled { get; set; }
        public bool? Required { get; set; }
        public uint? Port { get; set; }
        public string? Target { get; set; }
        public bool? FailClosed { get; set; }
    }

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
        Document doc;
        try
        {
            var normalized = string.Join('\n', yaml.Split('\n').Select(NormalizeKey));
            doc = new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build()
                .Deserialize<Document?>(normalized) ?? new Document();
        }
        catch (YamlException e)
        {
            throw new WorkspaceSpecException($"{source}:{e.Start.Line}: {(e.InnerException ?? e).Message}",
                "keys: name, image, setup, exec, env, hostname, profile, memory, cpus, sizeMib, ttl, vsock, mediation (enabled, required, port, target, failClosed)");
        }
        return new WorkspaceSpec
        {
            Name = doc.Name, Image = doc.Image, Exec = doc.Exec, Hostname = doc.Hostname, Profile = doc.Profile,
            MemoryMiB = doc.Memory, Cpus = doc.Cpus, SizeMiB = doc.SizeMib, TtlSeconds = doc.Ttl,
            Setup = doc.Setup switch
            {
                null => [],
                string s => [s],
                List<object> list => [.. list.Select(o => o?.ToString() ?? "")],
                _ => throw new WorkspaceSpecException($"{source}: setup must be a string or a list of strings"),
            },
            Env = doc.Env switch
            {
                null => [],
                List<object> list => [.. list.Select(o => o?.ToString() ?? "")],
                Dictionary<object, object> map => [.. map.Select(kv => $"{kv.Key}={kv.Value}")],
                _ => throw new WorkspaceSpecException($"{source}: env must be a list of KEY=VALUE or a map"),
            },
            Vsock = [.. (doc.Vsock ?? []).Select(VsockMapping.Parse)],
            Mediation = ParseMediation(doc.Mediation, source),
        };
    }

    /// <summary><c>mediation:</c> defaults: enabled, required, port 2048, fail-closed; <c>target</c> is mandatory. Disabled = none.</summary>
    private static MediationConfig? ParseMediation(MediationDocument? m, string source)
    {
        if (m is null || m.Enabled == false) return null;
        if (string.IsNullOrWhiteSpace(m.Target))
            throw new WorkspaceSpecException($"{source}: mediation.target is required", "example: target: 127.0.0.1:9900");
        return MediationConfig.Create(m.Port ?? MediationConfig.DefaultPort, m.Target, m.Required ?? true, m.FailClosed ?? true, enabled: true);
    }

    /// <summary>Accepts kebab-case top-level keys (<c>size-mib</c>) as camelCase.</summary>
    private static string NormalizeKey(string line)
    {
        // The one kebab-case nested key (mediation.fail-closed); other indented lines may be block-scalar text.
        string trimmed = line.TrimStart(' ');
        if (trimmed.StartsWith("fail-closed:", StringComparison.Ordinal)) return line[..(line.Length - trimmed.Length)] + "failClosed:" + trimmed["fail-closed:".Length..];
        if (line.Length == 0 || char.IsWhiteSpace(line[0]) || line[0] == '#' || line[0] == '-') return line;
        int colon = line.IndexOf(':');
        if (colon <= 0 || !line[..colon].Contains('-')) return line;
        var parts = line[..colon].Split('-');
        return string.Concat(parts.Take(1).Concat(parts.Skip(1).Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]))) + line[colon..];
    }
}
