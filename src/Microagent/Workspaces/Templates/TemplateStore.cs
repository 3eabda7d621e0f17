using System.Text.Json;
using Microagent.Tools;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Workspaces.Templates;

/// <summary>
/// Warm-start templates on disk (docs/ARCHITECTURE.md "Warm start"): <c>&lt;state&gt;/templates/&lt;key&gt;/</c> holding
/// <c>manifest.json</c> and <c>memory.state</c>, and their frozen disk layers in <c>templates/layers/&lt;id&gt;.qcow2</c> (0400, as
/// <see cref="DiskLayers"/> keeps a workspace's): a layer outlives its template while any workspace disk is an overlay on it.
/// Directories 0700, files 0600. A capture writes into <c>templates/.staging-&lt;key&gt;-&lt;id&gt;/</c> under <c>&lt;key&gt;.lock</c> and
/// renames it into place; a second maker that finds the lock held does not capture, and one that finds a current template there
/// discards its own (its layer stays for the disk it is under).
/// </summary>
internal sealed class TemplateStore(StatePaths paths)
{
    /// <summary>The hostname on a template's kernel command line: neutral, since every workspace of the key restores it and then takes its own.</summary>
    public const string BootHostname = "microagent";

    /// <summary>
    /// The rest of a template's kernel command line: the guest loads the <c>user</c> network's kernel modules before its hello,
    /// so the template holds them and a warm start's network setup adds only the link, addresses and rules (docs/ARCHITECTURE.md
    /// "Warm start"). Nothing workspace-specific: modules without rules change nothing.
    /// </summary>
    public const string BootKernelArgs = "microagent.netmodules=preload";

    private const string StagingPrefix = ".staging-";
    private const string RetiredPrefix = ".retired-";

    /// <summary>The templates directory.</summary>
    public string Root => paths.Templates;

    /// <summary>Where the frozen layers live.</summary>
    public string LayersDir => DiskLayers.Dir(Root);

    /// <summary>The directory of template <paramref name="key"/>.</summary>
    public string DirectoryOf(string key) => Path.Combine(Root, Path.GetFileName(key));

    /// <summary>The path of a template's disk layer.</summary>
    public string LayerPath(TemplateManifest m) => DiskLayers.PathOf(Root, m.DiskLayer ?? "");

    /// <summary>The saved VM state of template <paramref name="key"/>.</summary>
    public string MemoryPath(string key) => Path.Combine(DirectoryOf(key), SnapshotStore.MemoryFile);

    /// <summary>Takes the capture lock of <paramref name="key"/> if it is free now; null when another maker holds it.</summary>
    public FileLock? TryLock(string key)
    {
        StatePaths.EnsureDirectory(Root);
        return FileLock.TryAcquire(Path.Combine(Root, $"{Path.GetFileName(key)}.lock"));
    }

    /// <summary>
    /// Template <paramref name="key"/> when it may be restored into a VM described by <paramref name="target"/>; otherwise null and
    /// <paramref name="why"/> says why (none yet, or what differs: it is then skipped, and the next capture replaces it).
    /// </summary>
    public TemplateManifest? Find(string key, TemplateManifest target, out string why)
    {
        var m = Read(key);
        if (m is null) { why = $"no template {key} yet"; return null; }
        if (m.Key != key) { why = $"template {key} names another key ({m.Key})"; return null; }
        if (m.MismatchWith(target) is { } mismatch) { why = $"template {key} is not used: {mismatch}"; return null; }
        if (!File.Exists(MemoryPath(key)) || !File.Exists(LayerPath(m))) { why = $"template {key} is incomplete (its memory file or disk layer is missing)"; return null; }
        why = "";
        return m;
    }

    /// <summary>A fresh staging directory (0700) for a capture of <paramref name="key"/> (stale ones are removed).</summary>
    public string BeginCapture(string key)
    {
        StatePaths.EnsureDirectory(Root);
        foreach (string stale in Directory.EnumerateDirectories(Root, $"{StagingPrefix}{key}-*")) TryDeleteDir(stale);
        return StatePaths.EnsureDirectory(Path.Combine(Root, $"{StagingPrefix}{key}-{Guid.NewGuid():N}"));
    }

    /// <summary>
    /// Writes the manifest into <paramref name="staging"/> and renames it into place. A current template already there wins (the
    /// staging directory is discarded: false); one that is not current is replaced. Caller holds the key's lock.
    /// </summary>
    public bool Commit(string staging, TemplateManifest manifest)
    {
        string target = DirectoryOf(manifest.Key);
        File.WriteAllBytes(Path.Combine(staging, SnapshotStore.ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, SnapshotJson.Default.TemplateManifest));
        foreach (string f in Directory.EnumerateFiles(staging)) File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (Find(manifest.Key, manifest, out _) is not null) { TryDeleteDir(staging); return false; }
        if (Directory.Exists(target)) Retire(target);
        Directory.Move(staging, target);
        return true;
    }

    /// <summary>Removes the staging directory of a capture that did not complete.</summary>
    public static void Abandon(string staging) => TryDeleteDir(staging);

    /// <summary>Every readable template, oldest first, judged against <paramref name="target"/> (null: none is judged stale).</summary>
    public IReadOnlyList<TemplateInfo> List(Func<TemplateManifest, TemplateManifest?>? target = null)
    {
        if (!Directory.Exists(Root)) return [];
        var users = LayerUsers();
        var list = new List<TemplateInfo>();
        foreach (string dir in Directory.EnumerateDirectories(Root))
        {
            string name = Path.GetFileName(dir);
            if (name.StartsWith('.') || name == "layers" || ReadDir(dir) is not { } m) continue;
            string layer = Path.GetFullPath(LayerPath(m));
            long size = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length) + (File.Exists(layer) ? new FileInfo(layer).Length : 0);
            string? stale = target?.Invoke(m) is { } t ? (Find(m.Key, t, out string why) is null ? why : null) : null;
            list.Add(new TemplateInfo(m, dir, size, stale, users.TryGetValue(layer, out var u) ? u : []));
        }
        return list.OrderBy(t => t.Manifest.Created).ThenBy(t => t.Manifest.Key, StringComparer.Ordinal).ToList();
    }

    /// <summary>Removes template <paramref name="key"/> unless its capture lock is held; its layer stays while a disk needs it (<see cref="PruneLayers"/>).</summary>
    public bool Delete(string key)
    {
        using var held = TryLock(key);
        if (held is null || !Directory.Exists(DirectoryOf(key))) return false;
        Retire(DirectoryOf(key));
        return true;
    }

    /// <summary>
    /// Removes the templates made from image <paramref name="manifestDigest"/> that no workspace disk reads through (a template is a
    /// cache of a boot: an image that goes takes them along), then their layers; returns how many templates went.
    /// </summary>
    public int DropForImage(string manifestDigest)
    {
        int dropped = List().Count(t => t.Manifest.ImageDigest == manifestDigest && t.UsedBy.Count == 0 && Delete(t.Manifest.Key));
        if (dropped > 0) PruneLayers();
        return dropped;
    }

    /// <summary>Removes the template layers that no template and no workspace disk needs any more; returns the bytes freed.</summary>
    public long PruneLayers() =>
        DiskLayers.Prune(paths, Root, List().Select(t => LayerPath(t.Manifest)));

    /// <summary>Template layer path → the workspaces whose root disk reads through it.</summary>
    private Dictionary<string, List<string>> LayerUsers()
    {
        var users = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string prefix = Path.GetFullPath(LayersDir) + Path.DirectorySeparatorChar;
        foreach (string disk in WorkspaceLayout.AllDisks(paths).Where(d => !d.StartsWith(prefix, StringComparison.Ordinal)))
            foreach (string f in DiskLayers.Chain(disk).Where(f => f.StartsWith(prefix, StringComparison.Ordinal)))
            {
                if (!users.TryGetValue(f, out var list)) users[f] = list = [];
                string ws = Path.GetFileName(Path.GetDirectoryName(disk)!);
                if (!list.Contains(ws)) list.Add(ws);
            }
        return users;
    }

    /// <summary>Template <paramref name="key"/>'s manifest as stored (unchecked: <see cref="Find"/> checks it), or null.</summary>
    public TemplateManifest? Read(string key) => ReadDir(DirectoryOf(key));

    private static TemplateManifest? ReadDir(string dir)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, SnapshotStore.ManifestFile)), SnapshotJson.Default.TemplateManifest); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { return null; }
    }

    private void Retire(string dir)
    {
        string retired = Path.Combine(Root, $"{RetiredPrefix}{Path.GetFileName(dir)}-{Guid.NewGuid():N}");
        Directory.Move(dir, retired); // gone from the list at once, even if the removal is interrupted
        TryDeleteDir(retired);
    }

    private static void TryDeleteDir(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
