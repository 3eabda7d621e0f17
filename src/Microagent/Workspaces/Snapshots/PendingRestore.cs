using System.Text.Json;

namespace Microagent.Workspaces.Snapshots;

/// <summary>
/// A restore the next boot of a workspace performs instead of a cold boot (<c>&lt;ws&gt;/restore.json</c>, docs/ARCHITECTURE.md
/// "Snapshots"): written by <c>start --from-snapshot</c> just before the supervisor is launched, or by <c>create --from-snapshot</c>
/// (a fork: its first start resumes the snapshot, then takes its own identity). The supervisor removes it once it has tried.
/// </summary>
internal sealed record PendingRestore
{
    /// <summary>File name inside the workspace directory.</summary>
    public const string FileName = "restore.json";

    /// <summary>The snapshot's directory (in the source workspace for a fork).</summary>
    public required string SnapshotDir { get; init; }
    /// <summary>The workspace the snapshot was taken of.</summary>
    public required string Source { get; init; }
    /// <summary>Its tag.</summary>
    public required string Tag { get; init; }
    /// <summary>Apply the workspace's own identity (hostname, new machine-id) after the restore: a fork.</summary>
    public bool Fork { get; init; }

    /// <summary>A warm start (docs/ARCHITECTURE.md "Warm start"): the key of the template restored (<see cref="SnapshotDir"/> is its directory); the workspace's identity is applied after it, as for a fork.</summary>
    public string? Template { get; init; }

    /// <summary>"SOURCE:TAG", as status shows it.</summary>
    public string Label => $"{Source}:{Tag}";

    /// <summary>The pending restore of workspace directory <paramref name="dir"/>; null when there is none (or it is unreadable).</summary>
    public static PendingRestore? Read(string dir)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, FileName)), SnapshotJson.Default.PendingRestore); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { return null; }
    }

    /// <summary>Writes it (atomically, 0600) into workspace directory <paramref name="dir"/>.</summary>
    public void Write(string dir) => StatePaths.WriteAtomic(Path.Combine(dir, FileName), JsonSerializer.SerializeToUtf8Bytes(this, SnapshotJson.Default.PendingRestore));

    /// <summary>Removes the pending restore of <paramref name="dir"/>.</summary>
    public static void Clear(string dir)
    {
        try { File.Delete(Path.Combine(dir, FileName)); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Every workspace with a pending restore, by name.</summary>
    public static IEnumerable<(string Workspace, PendingRestore Restore)> All(StatePaths paths)
    {
        if (!Directory.Exists(paths.Workspaces)) yield break;
        foreach (string ws in Directory.EnumerateDirectories(paths.Workspaces))
            if (Read(ws) is { } r) yield return (Path.GetFileName(ws), r);
    }
}
