using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microagent.Errors;

namespace Microagent.Workspaces.Snapshots;

/// <summary>One stored snapshot: its manifest and the bytes its files take.</summary>
/// <param name="Manifest">What it was taken with.</param>
/// <param name="Directory">Its directory.</param>
/// <param name="SizeBytes">Apparent size of its files (the memory file is sparse: fewer blocks are allocated).</param>
public sealed record SnapshotInfo(SnapshotManifest Manifest, string Directory, long SizeBytes);

/// <summary>
/// The snapshots of one workspace on disk (docs/ARCHITECTURE.md "Snapshots"): <c>&lt;ws&gt;/snapshots/&lt;tag&gt;/</c> holding
/// <c>manifest.json</c> and <c>memory.state</c> (the disk is a frozen layer under <c>layers/</c>, <see cref="DiskLayers"/>), directories 0700 and files 0600. A capture writes into a
/// staging directory (<c>.staging-…</c>) and <see cref="Commit"/> renames it into place, so a capture that fails half-way
/// leaves the previous snapshot of that tag as it was (and the staging directory is removed, now or by the next capture).
/// </summary>
public sealed partial class SnapshotStore(string workspaceDir)
{
    /// <summary>The saved VM state (QEMU <c>migrate</c> to <c>file:</c>, mapped-ram).</summary>
    public const string MemoryFile = "memory.state";
    /// <summary>A forensic capture's memory (QEMU <c>dump-guest-memory</c>, an ELF core; docs/ARCHITECTURE.md "Quarantine").</summary>
    public const string ForensicMemoryFile = "memory.elf";
    /// <summary>The disk as it was at the capture (qcow2).</summary>
    public const string DiskFile = "disk.qcow2";
    /// <summary>The manifest.</summary>
    public const string ManifestFile = "manifest.json";

    private const string StagingPrefix = ".staging-";
    private const string RetiredPrefix = ".retired-";

    /// <summary>The snapshots directory.</summary>
    public string Root { get; } = Path.Combine(workspaceDir, "snapshots");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex TagPattern();

    /// <summary>A tag for a capture now: <c>yyyyMMdd-HHmmss-fff</c> (UTC).</summary>
    public static string DefaultTag(DateTimeOffset now) => now.UtcDateTime.ToString("yyyyMMdd-HHmmss-fff", CultureInfo.InvariantCulture);

    /// <summary>Throws <see cref="WorkspaceSpecException"/> unless <paramref name="tag"/> is 1–64 of [A-Za-z0-9._-], not starting with '.', '_' or '-'.</summary>
    public static string ValidateTag(string tag)
    {
        if (!TagPattern().IsMatch(tag ?? ""))
            throw new WorkspaceSpecException($"snapshot tag '{tag}' is not valid", "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit") { Field = "tag" };
        return tag!;
    }

    /// <summary>The directory of snapshot <paramref name="tag"/>.</summary>
    public string DirectoryOf(string tag) => Path.Combine(Root, ValidateTag(tag));

    /// <summary>A fresh, empty staging directory (0700) for a capture of <paramref name="tag"/>; stale ones of earlier failed captures are removed.</summary>
    public string BeginCapture(string tag)
    {
        ValidateTag(tag);
        StatePaths.EnsureDirectory(Root);
        foreach (string stale in Directory.EnumerateDirectories(Root, StagingPrefix + "*")) TryDelete(stale);
        return StatePaths.EnsureDirectory(Path.Combine(Root, $"{StagingPrefix}{tag}-{Guid.NewGuid():N}"));
    }

    /// <summary>Writes the manifest into <paramref name="staging"/>, makes every file 0600 and renames the directory into place as the manifest's tag (replacing an older one).</summary>
    public SnapshotInfo Commit(string staging, SnapshotManifest manifest)
    {
        string target = DirectoryOf(manifest.Tag);
        File.WriteAllBytes(Path.Combine(staging, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, SnapshotJson.Default.SnapshotManifest));
        foreach (string f in Directory.EnumerateFiles(staging)) File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string? retired = null;
        if (Directory.Exists(target))
        {
            retired = Path.Combine(Root, $"{RetiredPrefix}{manifest.Tag}-{Guid.NewGuid():N}");
            Directory.Move(target, retired);
        }
        Directory.Move(staging, target);
        if (retired is not null) TryDelete(retired);
        return Read(target) ?? throw MicroagentException.Permanent($"snapshot '{manifest.Tag}' has no readable manifest after its capture");
    }

    /// <summary>Removes a staging directory of a capture that failed (the previous snapshot of the tag is untouched).</summary>
    public static void Abandon(string staging) => TryDelete(staging);

    /// <summary>Snapshot <paramref name="tag"/>, or <see cref="SnapshotNotFoundException"/> naming the tags there are.</summary>
    public SnapshotInfo Get(string workspace, string tag) =>
        Read(DirectoryOf(tag)) ?? throw new SnapshotNotFoundException(workspace, tag, List().Select(s => s.Manifest.Tag).ToList());

    /// <summary>Every readable snapshot, oldest first (staging and retired directories are not snapshots).</summary>
    public IReadOnlyList<SnapshotInfo> List()
    {
        if (!Directory.Exists(Root)) return [];
        return Directory.EnumerateDirectories(Root)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Select(Read).OfType<SnapshotInfo>()
            .OrderBy(s => s.Manifest.Created).ThenBy(s => s.Manifest.Tag, StringComparer.Ordinal).ToList();
    }

    /// <summary>Deletes snapshot <paramref name="tag"/>; false when there was none.</summary>
    public bool Delete(string tag)
    {
        string dir = DirectoryOf(tag);
        if (!Directory.Exists(dir)) return false;
        string retired = Path.Combine(Root, $"{RetiredPrefix}{tag}-{Guid.NewGuid():N}");
        Directory.Move(dir, retired); // gone from the list at once, even if the removal below is interrupted
        TryDelete(retired);
        return true;
    }

    private static SnapshotInfo? Read(string dir)
    {
        try
        {
            var manifest = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, ManifestFile)), SnapshotJson.Default.SnapshotManifest);
            if (manifest is null) return null;
            long size = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length);
            return new SnapshotInfo(manifest, dir, size);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { return null; }
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>No snapshot with that tag (<see cref="ErrorKind.NotFound"/>).</summary>
public sealed class SnapshotNotFoundException(string workspace, string tag, IReadOnlyList<string> tags)
    : MicroagentException(ErrorKind.NotFound, $"workspace '{workspace}' has no snapshot '{tag}'",
        tags.Count == 0 ? $"it has none: `microagent snapshot create {workspace}` takes one" : $"its snapshots: {string.Join(", ", tags)}")
{
    /// <summary>The tag asked for.</summary>
    public string Tag { get; } = tag;
}
