using Microagent.Images;

namespace Microagent.Workspaces.Snapshots;

/// <summary>
/// Frozen qcow2 layers of a workspace (docs/ARCHITECTURE.md "Snapshots"): <c>&lt;ws&gt;/layers/&lt;id&gt;.qcow2</c>, read-only (0400),
/// each the top of the disk when a snapshot was taken, backed by the layer before it and finally the image baseline. The live
/// disk (<c>root.qcow2</c>), restored disks and forks are overlays on one of them. A layer is kept while any snapshot, any
/// workspace's disk or any fork waiting for its first start needs it.
/// </summary>
internal static class DiskLayers
{
    /// <summary>The layers directory of a workspace.</summary>
    public static string Dir(string workspaceDir) => Path.Combine(workspaceDir, "layers");

    /// <summary>The path of layer <paramref name="name"/> of a workspace.</summary>
    public static string PathOf(string workspaceDir, string name) => Path.Combine(Dir(workspaceDir), Path.GetFileName(name));

    /// <summary>A fresh layer file name.</summary>
    public static string NewName() => $"{Guid.NewGuid():N}.qcow2";

    /// <summary>Every file <paramref name="disk"/> reads through: itself and its backing chain.</summary>
    public static IEnumerable<string> Chain(string disk) => File.Exists(disk) ? DiskOverlay.BackingChain(disk).Prepend(Path.GetFullPath(disk)) : [];

    /// <summary>
    /// Removes the layers of <paramref name="workspaceDir"/> that nothing needs any more: not in the chain of any disk under
    /// <paramref name="paths"/> (root disks of every workspace, forks included), nor of a snapshot's layer, nor of
    /// <paramref name="alsoKeep"/>. Returns the bytes freed.
    /// </summary>
    public static long Prune(StatePaths paths, string workspaceDir, IEnumerable<string> alsoKeep)
    {
        string dir = Dir(workspaceDir);
        if (!Directory.Exists(dir)) return 0;
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (string disk in WorkspaceLayout.AllDisks(paths).Where(d => !IsLayer(d)).Concat(alsoKeep).Concat(SnapshotLayers(paths)))
            foreach (string f in Chain(disk)) needed.Add(f);
        long freed = 0;
        foreach (string layer in Directory.EnumerateFiles(dir, "*.qcow2"))
        {
            if (needed.Contains(Path.GetFullPath(layer))) continue;
            try { freed += new FileInfo(layer).Length; File.Delete(layer); }
            catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return freed;
    }

    /// <summary>Workspaces other than <paramref name="workspaceDir"/>'s whose disk (or pending first restore) reads a layer of it.</summary>
    public static IReadOnlyList<string> Dependents(StatePaths paths, string workspaceDir)
    {
        string prefix = Path.GetFullPath(workspaceDir) + Path.DirectorySeparatorChar;
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string disk in WorkspaceLayout.AllDisks(paths).Where(d => !IsLayer(d) && !d.StartsWith(prefix, StringComparison.Ordinal) && !d.Contains("/snapshots/")))
            if (Chain(disk).Any(f => f.StartsWith(prefix, StringComparison.Ordinal)))
                names.Add(Path.GetFileName(Path.GetDirectoryName(disk)!));
        foreach (var (fork, pending) in PendingRestore.All(paths))
            if (Path.GetFullPath(pending.SnapshotDir).StartsWith(prefix, StringComparison.Ordinal)) names.Add(fork);
        return names.ToList();
    }

    private static bool IsLayer(string path) => Path.GetFileName(Path.GetDirectoryName(path)) == "layers";

    /// <summary>The layer of every snapshot of every workspace.</summary>
    private static IEnumerable<string> SnapshotLayers(StatePaths paths)
    {
        if (!Directory.Exists(paths.Workspaces)) yield break;
        foreach (string ws in Directory.EnumerateDirectories(paths.Workspaces))
            foreach (var s in new SnapshotStore(ws).List())
                if (s.Manifest.DiskLayer is { } layer) yield return PathOf(ws, layer);
    }
}
