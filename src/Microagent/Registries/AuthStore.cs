using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;

namespace Microagent.Registries;

/// <summary>A username and secret for one registry. <see cref="ToString"/> never shows the secret.</summary>
public sealed record RegistryCredential(string Username, string Secret)
{
    /// <inheritdoc />
    public override string ToString() => $"{Username}:***";
}

/// <summary>
/// Registry credentials in <c>&lt;state&gt;/auth.json</c> (mode 0600, written atomically), in the
/// Docker <c>config.json</c> shape: <c>{"auths":{"HOST":{"auth":"base64(user:secret)"}}}</c>.
/// Keys are normalised registry names (<c>docker.io</c> for Docker Hub).
/// </summary>
public sealed class AuthStore(StatePaths paths)
{
    /// <summary>The file.</summary>
    public string FilePath => Path.Combine(paths.Root, "auth.json");

    /// <summary>The credential for <paramref name="registry"/>, or null.</summary>
    public RegistryCredential? Get(string registry)
        => Load().TryGetValue(Normalize(registry), out var c) ? c : null;

    /// <summary>Registries with stored credentials and their usernames.</summary>
    public IReadOnlyList<(string Registry, string Username)> List()
        => Load().OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value.Username)).ToList();

    /// <summary>Stores (replaces) the credential for <paramref name="registry"/>.</summary>
    public void Set(string registry, RegistryCredential credential)
    {
        if (credential.Username.Contains(':')) throw MicroagentException.Invalid("a registry username cannot contain `:`");
        var all = Load();
        all[Normalize(registry)] = credential;
        Save(all);
    }

    /// <summary>Removes the credential; false when there was none.</summary>
    public bool Remove(string registry)
    {
        var all = Load();
        if (!all.Remove(Normalize(registry))) return false;
        Save(all);
        return true;
    }

    /// <summary>Registry key: lowercase host[:port], Docker Hub aliases folded to <c>docker.io</c>.</summary>
    public static string Normalize(string registry)
    {
        string r = registry.Trim().ToLowerInvariant();
        foreach (string prefix in new[] { "https://", "http://" })
            if (r.StartsWith(prefix, StringComparison.Ordinal)) r = r[prefix.Length..];
        r = r.TrimEnd('/');
        if (r.EndsWith("/v1", StringComparison.Ordinal) || r.EndsWith("/v2", StringComparison.Ordinal)) r = r[..^3];
        return r is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? "docker.io" : r;
    }

    private Dictionary<string, RegistryCredential> Load()
    {
        var result = new Dictionary<string, RegistryCredential>(StringComparer.Ordinal);
        if (!File.Exists(FilePath)) return result;
        try
        {
            var root = JsonNode.Parse(File.ReadAllBytes(FilePath));
            if (root?["auths"] is not JsonObject auths) return result;
            foreach (var (host, node) in auths)
            {
                if (node?["auth"]?.GetValue<string>() is not { } b64) continue;
                string pair = Encoding.UTF8.GetString(Convert.FromBase64String(b64));
                int colon = pair.IndexOf(':');
                if (colon <= 0) continue;
                result[host] = new RegistryCredential(pair[..colon], pair[(colon + 1)..]);
            }
            return result;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            // The message names the file only: its contents are secrets.
            throw MicroagentException.Invalid($"{FilePath} is malformed", "fix or delete it, then `microagent registry login` again");
        }
    }

    private void Save(Dictionary<string, RegistryCredential> all)
    {
        var auths = new JsonObject();
        foreach (var (host, c) in all.OrderBy(p => p.Key, StringComparer.Ordinal))
            auths[host] = new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Secret}")) };
        StatePaths.EnsureDirectory(paths.Root);
        StatePaths.WriteAtomic(FilePath, new JsonObject { ["auths"] = auths }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
