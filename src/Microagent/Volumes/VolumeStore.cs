using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microagent.Errors;
using Microagent.Tools;
using Microagent.Workspaces;

namespace Microagent.Volumes;

/// <summary>Names of volumes and data disks: one path component of letters, digits, '.', '_' and '-'.</summary>
public static partial class VolumeName
{
    /// <summary>Longest name.</summary>
    public const int MaxLength = 48;

    /// <summary>Whether <paramref name="name"/> is acceptable.</summary>
    public static bool IsValid(string? name) => name is { Length: > 0 and <= MaxLength } && Pattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex Pattern();
}

/// <summary>A named volume as stored (<c>volumes/NAME.json</c> beside <c>volumes/NAME.ext4</c>).</summary>
/// <param name="Name">Volume name.</param>
/// <param name="SizeMiB">Filesystem size.</param>
/// <param name="CreatedAt">When it was created.</param>
internal sealed record VolumeRecord(string Name, int SizeMiB, DateTimeOffset CreatedAt);

/// <summary>A named volume and who uses it.</summary>
/// <param name="Name">Volume name.</param>
/// <param name="Path">The ext4 file.</param>
/// <param name="SizeMiB">Filesystem size.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="UsedBy">Workspaces whose config attaches it.</param>
/// <param name="InUse">A running workspace has it attached now.</param>
public sealed record VolumeInfo(string Name, string Path, int SizeMiB, DateTimeOffset CreatedAt, IReadOnlyList<string> UsedBy, bool InUse);

/// <summary>What a volume delete did.</summary>
/// <param name="Name">Volume name.</param>
/// <param name="Existed">False when there was no such volume.</param>
/// <param name="DetachedFrom">Workspaces that still named it (only with force).</param>
public sealed record VolumeDeleteResult(string Name, bool Existed, IReadOnlyList<string> DetachedFrom);

/// <summary>
/// Named volumes (docs/ARCHITECTURE.md "Images and disks"): ext4 files under <c>&lt;state&gt;/volumes/</c> (0600, sparse) that
/// outlive their workspaces. A workspace attaches one with <c>-v NAME:/dst</c>; its supervisor holds the volume's
/// <see cref="DiskLock"/> while the VM runs, so a volume attached read-write is in at most one running workspace.
/// Delete refuses while a running workspace has it attached (always) or a stored workspace names it (unless forced).
/// </summary>
public sealed class VolumeStore(StatePaths paths)
{
    /// <summary>Size of a volume created without one.</summary>
    public const int DefaultSizeMiB = 1024;
    /// <summary>Smallest volume (ext4 with a journal needs a few MiB).</summary>
    public const int MinSizeMiB = 16;
    /// <summary>Largest volume (1 TiB, sparse).</summary>
    public const int MaxSizeMiB = 1 << 20;

    private readonly StatePaths _paths = paths ?? throw new ArgumentNullException(nameof(paths));

    /// <summary>The volumes directory.</summary>
    public string Dir => Path.Combine(_paths.Root, "volumes");

    /// <summary>The ext4 file of volume <paramref name="name"/>.</summary>
    public string ImagePath(string name) => Path.Combine(Dir, Check(name) + ".ext4");

    private string RecordPath(string name) => Path.Combine(Dir, name + ".json");

    /// <summary>Creates an empty ext4 volume of <paramref name="sizeMiB"/> (default 1 GiB); <c>conflict</c> when it exists.</summary>
    public async Task<VolumeInfo> CreateAsync(string name, int? sizeMiB = null, CancellationToken ct = default)
    {
        Check(name);
        int size = sizeMiB ?? DefaultSizeMiB;
        if (size is < MinSizeMiB or > MaxSizeMiB)
            throw new WorkspaceSpecException($"volume size {size} MiB is out of range ({MinSizeMiB}-{MaxSizeMiB} MiB)", "example: --size 2048") { Field = "size" };
        StatePaths.EnsureDirectory(Dir);
        using var held = await FileLock.AcquireAsync(LockPath(name), TimeSpan.FromMinutes(1), ct).ConfigureAwait(false)
            ?? throw new MicroagentException(ErrorKind.Conflict, $"volume '{name}' is being changed by another command", "retry in a moment");
        if (File.Exists(RecordPath(name)))
            throw new MicroagentException(ErrorKind.Conflict, $"volume '{name}' already exists", $"use it with -v {name}:/DIR, or `microagent volume delete {name}` first") { Field = "name" };
        string tmp = Path.Combine(Dir, $".{name}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            await ExternalTool.RunAsync("mke2fs", "e2fsprogs",
                ["-q", "-t", "ext4", "-m", "0", "-E", "root_owner=0:0", "-F", tmp, $"{size.ToString(CultureInfo.InvariantCulture)}M"], ct).ConfigureAwait(false);
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(tmp, ImagePath(name), overwrite: true);
            StatePaths.WriteAtomic(RecordPath(name), JsonSerializer.SerializeToUtf8Bytes(new VolumeRecord(name, size, DateTimeOffset.UtcNow), VolumeJson.Default.VolumeRecord));
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return Inspect(name);
    }

    /// <summary>Every volume, by name.</summary>
    public IReadOnlyList<VolumeInfo> List()
    {
        if (!Directory.Exists(Dir)) return [];
        var users = UsersByVolume();
        return [.. Directory.EnumerateFiles(Dir, "*.json").Select(Path.GetFileNameWithoutExtension).Where(VolumeName.IsValid)
            .Order(StringComparer.Ordinal).Select(n => Info(n!, users)).OfType<VolumeInfo>()];
    }

    /// <summary>Volume <paramref name="name"/>; <c>not_found</c> when absent.</summary>
    public VolumeInfo Inspect(string name) => Info(Check(name), UsersByVolume()) ?? throw NotFound(name);

    /// <summary>The volume's ext4 file when it exists; <c>not_found</c> (naming <c>volume create</c>) otherwise.</summary>
    public string RequireImage(string name)
    {
        string path = ImagePath(name);
        if (!File.Exists(RecordPath(name)) || !File.Exists(path)) throw NotFound(name);
        return path;
    }

    /// <summary>
    /// Deletes the volume and its data. Attached to a running workspace: <c>conflict</c> (halt it first), even with
    /// <paramref name="force"/>. Named by stored workspaces: <c>conflict</c> unless <paramref name="force"/> (their next start then
    /// fails with <c>not_found</c> naming the volume). Absent: <see cref="VolumeDeleteResult.Existed"/> false.
    /// </summary>
    public async Task<VolumeDeleteResult> DeleteAsync(string name, bool force = false, CancellationToken ct = default)
    {
        Check(name);
        if (!File.Exists(RecordPath(name)) && !File.Exists(ImagePath(name))) return new VolumeDeleteResult(name, false, []);
        using var held = await FileLock.AcquireAsync(LockPath(name), TimeSpan.FromMinutes(1), ct).ConfigureAwait(false)
            ?? throw new MicroagentException(ErrorKind.Conflict, $"volume '{name}' is being changed by another command", "retry in a moment");
        string image = ImagePath(name);
        IReadOnlyList<string> users = UsersByVolume().GetValueOrDefault(name, []);
        // Holding the disk lock exclusively keeps every supervisor from attaching it while it goes.
        using var disk = DiskLock.TryAcquire(DiskLock.PathFor(_paths, image), exclusive: true)
            ?? throw new MicroagentException(ErrorKind.Conflict, $"volume '{name}' is attached to a running workspace{(users.Count > 0 ? $" ({string.Join(", ", users)})" : "")}",
                "halt that workspace first (`microagent halt NAME`); a volume in use is never deleted, not even with --force");
        if (users.Count > 0 && !force)
            throw new MicroagentException(ErrorKind.Conflict, $"volume '{name}' is attached to workspace{(users.Count > 1 ? "s" : "")} {string.Join(", ", users)}",
                $"delete {(users.Count > 1 ? "them" : "it")} first, or `microagent volume delete {name} --force` (their next start then fails until the volume is recreated)");
        File.Delete(image);
        File.Delete(RecordPath(name));
        return new VolumeDeleteResult(name, true, users);
    }

    private VolumeInfo? Info(string name, Dictionary<string, List<string>> users)
    {
        VolumeRecord? record;
        try { record = JsonSerializer.Deserialize(File.ReadAllBytes(RecordPath(name)), VolumeJson.Default.VolumeRecord); }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
        if (record is null) return null;
        string image = ImagePath(name);
        return new VolumeInfo(name, image, record.SizeMiB, record.CreatedAt, users.GetValueOrDefault(name, []),
            DiskLock.IsHeld(DiskLock.PathFor(_paths, image)));
    }

    /// <summary>Volume name → workspaces whose stored config attaches it.</summary>
    private Dictionary<string, List<string>> UsersByVolume()
    {
        var users = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        if (!Directory.Exists(_paths.Workspaces)) return users;
        foreach (string dir in Directory.EnumerateDirectories(_paths.Workspaces).Order(StringComparer.Ordinal))
        {
            WorkspaceConfig? config;
            try { config = WorkspaceStore.TryReadConfig(Path.Combine(dir, "config.json")); }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { continue; }
            foreach (var d in config?.Disks ?? [])
                if (d.Kind == DiskKinds.Volume)
                {
                    if (!users.TryGetValue(d.Source, out var list)) users[d.Source] = list = [];
                    list.Add(config!.Name);
                }
        }
        return users;
    }

    private string LockPath(string name) => Path.Combine(_paths.Root, "locks", $"volume-{name}.lock");

    private static string Check(string name) => VolumeName.IsValid(name) ? name
        : throw new WorkspaceSpecException($"volume name '{name}' is invalid", "use 1-48 letters, digits, '.', '_' and '-', starting with a letter or digit") { Field = "name" };

    private static MicroagentException NotFound(string name) =>
        MicroagentException.NotFound($"volume '{name}' does not exist", $"create it: `microagent volume create {name}` (see `microagent volume list`)");
}

/// <summary>Source-generated JSON of volume records.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(VolumeRecord))]
internal sealed partial class VolumeJson : JsonSerializerContext;
