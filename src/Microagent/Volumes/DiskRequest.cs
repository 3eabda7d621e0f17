using Microagent.Workspaces;

namespace Microagent.Volumes;

/// <summary>What a data disk is made from (docs/ARCHITECTURE.md "Images and disks").</summary>
public static class DiskKinds
{
    /// <summary>A host ext4 image file, attached as it is (writes land in it when rw).</summary>
    public const string Image = "image";
    /// <summary>A <c>.tar</c>/<c>.tar.gz</c> bundle, made into an ext4 image cached by digest (a qcow2 overlay per workspace when rw).</summary>
    public const string Bundle = "bundle";
    /// <summary>A named volume: an ext4 file under <c>&lt;state&gt;/volumes/</c> that outlives its workspaces.</summary>
    public const string Volume = "volume";
}

/// <summary>
/// One requested data disk: <paramref name="Kind"/> (<see cref="DiskKinds"/>), a label unique in the workspace, the source as
/// given (host path or volume name), the guest mount point and the mode. The three CLI spellings parse here, so every adapter
/// has the same rules: <c>-v SRC:DST[:ro|rw]</c>, <c>--disk NAME=PATH:MOUNT[:ro|rw]</c>, <c>--bundle NAME=PATH:MOUNT[:ro|rw]</c>.
/// </summary>
/// <param name="Kind">image, bundle or volume.</param>
/// <param name="Name">Label of the disk in the workspace.</param>
/// <param name="Source">Host path (image, bundle) or volume name.</param>
/// <param name="Target">Absolute guest directory it is mounted on.</param>
/// <param name="ReadOnly">Attached and mounted read-only.</param>
public sealed record DiskRequest(string Kind, string Name, string Source, string Target, bool ReadOnly)
{
    /// <summary>Most data disks one workspace may have.</summary>
    public const int MaxDisks = 16;

    private static readonly string[] BundleSuffixes = [".tar", ".tar.gz", ".tgz"];
    private static readonly string[] ImageSuffixes = [".ext4", ".img", ".raw"];

    /// <summary>
    /// Parses <c>SRC:DST[:ro|rw]</c>. SRC is a bundle when it ends in .tar, .tar.gz or .tgz; an ext4 image when it names a host
    /// file (or ends in .ext4, .img, .raw, or has a '/'); otherwise a named volume. A host directory is refused: nothing of the
    /// host's filesystem is shared into a VM. Images and volumes default to rw, bundles to ro.
    /// </summary>
    public static DiskRequest ParseVolume(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Split(':');
        if (parts.Length == 1 && text.Length > 0)
            throw Bad(text, $"'{text}' has no guest mount point", $"give one after a ':', for example -v {text}:/data");
        if (parts.Length is < 2 or > 3 || parts[0].Length == 0)
            throw Bad(text, $"'{text}' is not SRC:DST[:ro|rw]", "example: -v data:/data (named volume), -v ./disk.ext4:/mnt:ro, -v ./src.tar.gz:/src");
        string source = parts[0];
        RefuseHostDirectory(source, text);
        string kind = KindOf(source);
        string name = kind == DiskKinds.Volume ? source : LabelOf(source);
        return Make(kind, name, source, parts[1], parts.Length == 3 ? parts[2] : null, text);
    }

    /// <summary>Parses <c>NAME=PATH:MOUNT[:ro|rw]</c> for an ext4 image (<paramref name="kind"/> image) or a bundle (bundle).</summary>
    public static DiskRequest ParseNamed(string kind, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (kind is not (DiskKinds.Image or DiskKinds.Bundle)) throw new ArgumentOutOfRangeException(nameof(kind));
        string flag = kind == DiskKinds.Image ? "--disk" : "--bundle";
        int eq = text.IndexOf('=');
        string[] parts = eq <= 0 ? [] : text[(eq + 1)..].Split(':');
        if (eq <= 0 || parts.Length is < 2 or > 3 || parts[0].Length == 0)
            throw Bad(text, $"{flag} '{text}' is not NAME=PATH:MOUNT[:ro|rw]",
                kind == DiskKinds.Image ? "example: --disk data=./data.ext4:/data:rw" : "example: --bundle src=./src.tar.gz:/src:ro");
        string source = parts[0];
        RefuseHostDirectory(source, text);
        if (kind == DiskKinds.Bundle && KindOf(source) != DiskKinds.Bundle)
            throw Bad(text, $"{flag} '{text}': a bundle is a .tar, .tar.gz or .tgz file", "give an ext4 image with --disk instead");
        return Make(kind, text[..eq], source, parts[1], parts.Length == 3 ? parts[2] : null, text);
    }

    /// <summary>The request as <c>-v</c> would write it.</summary>
    public override string ToString() => $"{Source}:{Target}:{(ReadOnly ? "ro" : "rw")}";

    /// <summary>Checks a whole list: at most <see cref="MaxDisks"/>, unique labels, unique and non-nested targets.</summary>
    public static void CheckList(IReadOnlyList<DiskRequest> disks)
    {
        ArgumentNullException.ThrowIfNull(disks);
        if (disks.Count > MaxDisks)
            throw new WorkspaceSpecException($"{disks.Count} data disks requested; at most {MaxDisks}", "combine data into fewer disks") { Field = "volume" };
        foreach (var d in disks)
        {
            if (disks.Count(o => o.Name == d.Name) > 1)
                throw new WorkspaceSpecException($"two data disks are named '{d.Name}'", "give each disk its own NAME (--disk NAME=...)") { Field = "volume" };
            if (disks.Any(o => !ReferenceEquals(o, d) && (o.Target == d.Target || o.Target.StartsWith(d.Target + "/", StringComparison.Ordinal))))
                throw new WorkspaceSpecException($"data disk targets overlap at {d.Target}", "mount each disk on its own directory, none inside another") { Field = "volume" };
            if (disks.Count(o => o.Kind == DiskKinds.Volume && o.Source == d.Source && d.Kind == DiskKinds.Volume) > 1)
                throw new WorkspaceSpecException($"volume '{d.Source}' is attached twice", "attach a volume once per workspace") { Field = "volume" };
        }
    }

    private static DiskRequest Make(string kind, string name, string source, string target, string? mode, string text)
    {
        if (!VolumeName.IsValid(name))
            throw Bad(text, $"disk name '{name}' is invalid", "use 1-48 letters, digits, '.', '_' and '-', starting with a letter or digit");
        CheckTarget(target, text);
        bool readOnly = mode switch
        {
            null => kind == DiskKinds.Bundle,
            "ro" => true,
            "rw" => false,
            _ => throw Bad(text, $"unknown mode '{mode}' in '{text}'", "the mode is ro (read-only) or rw (read-write)"),
        };
        return new DiskRequest(kind, name, source, target, readOnly);
    }

    private static void CheckTarget(string target, string text)
    {
        if (target.Length == 0) throw Bad(text, $"'{text}' has no guest mount point", "give an absolute guest directory after the ':' (for example /data)");
        if (!target.StartsWith('/')) throw Bad(text, $"mount point '{target}' is not absolute", $"write it from the guest's root: /{target.TrimStart('.', '/')}");
        string[] parts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw Bad(text, "a data disk cannot be mounted on /", "mount it on a directory such as /data");
        if (parts.Any(p => p is "." or "..") || target.Any(char.IsControl) || target.Any(char.IsWhiteSpace) || target.Length > 1024)
            throw Bad(text, $"mount point '{target}' must be a plain absolute path (no '.', '..', spaces or control characters)", "example: /data");
        if (parts[0] is "proc" or "sys" or "dev" or "run" or "tmp")
            throw Bad(text, $"mount point '{target}' is under /{parts[0]}, which the guest agent mounts itself", "choose another directory, such as /data");
        if ("/" + string.Join('/', parts) != target)
            throw Bad(text, $"mount point '{target}' is not in its plain form", $"write it as /{string.Join('/', parts)}");
    }

    private static string KindOf(string source)
    {
        if (BundleSuffixes.Any(s => source.EndsWith(s, StringComparison.OrdinalIgnoreCase))) return DiskKinds.Bundle;
        if (File.Exists(source) || source.Contains('/') || source.StartsWith('~') || ImageSuffixes.Any(s => source.EndsWith(s, StringComparison.OrdinalIgnoreCase)))
            return DiskKinds.Image;
        return DiskKinds.Volume;
    }

    /// <summary>A disk label from a file name: its name without the extension, reduced to the allowed characters.</summary>
    private static string LabelOf(string path)
    {
        string file = Path.GetFileName(path.TrimEnd('/'));
        foreach (string s in BundleSuffixes.Concat(ImageSuffixes))
            if (file.EndsWith(s, StringComparison.OrdinalIgnoreCase)) { file = file[..^s.Length]; break; }
        string label = new([.. file.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]);
        label = label.TrimStart('.', '_', '-');
        if (label.Length > VolumeName.MaxLength) label = label[..VolumeName.MaxLength];
        return label.Length == 0 ? "disk" : label;
    }

    /// <summary>A host directory is never shared into a workspace (isolation: a VM boundary; there is no shared filesystem).</summary>
    private static void RefuseHostDirectory(string source, string text)
    {
        const string Why = "host directories are not shared into a workspace (it is a VM with its own kernel and disks; no shared filesystem crosses that boundary)";
        string? message = null;
        if (Directory.Exists(source)) message = $"'{source}' is a host directory: {Why}";
        // A path that is not there and not named like a disk file is most likely a directory bind mount, Docker style.
        else if (KindOf(source) == DiskKinds.Image && !File.Exists(source) && !ImageSuffixes.Any(s => source.EndsWith(s, StringComparison.OrdinalIgnoreCase)))
            message = $"'{source}' does not exist and is not named like an ext4 image (.ext4, .img, .raw) or a bundle (.tar, .tar.gz, .tgz); if it is meant as a host directory: {Why}";
        if (message is null) return;
        throw new WorkspaceSpecException(message,
            "pack it: `tar -czf data.tar.gz -C DIR .` and attach it with -v ./data.tar.gz:/data; or make an ext4 image (`mke2fs -t ext4 -d DIR data.ext4 512M`); "
            + "or copy files with `microagent cp DIR NAME:/data`; for data that outlives workspaces, `microagent volume create NAME` and -v NAME:/data") { Field = "volume" };
    }

    private static WorkspaceSpecException Bad(string text, string message, string remediation) => new(message, remediation) { Field = "volume" };
}
