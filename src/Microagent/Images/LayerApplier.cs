using System.Formats.Tar;
using System.IO.Compression;
using Microagent.Errors;
using Microagent.Interop;

namespace Microagent.Images;

/// <summary>Caps that stop a hostile image (decompression bomb, inode flood) before it fills the disk.</summary>
/// <param name="MaxEntries">Most tar entries over all layers.</param>
/// <param name="MaxTotalBytes">Most regular-file bytes over all layers.</param>
public sealed record LayerLimits(long MaxEntries = 2_000_000, long MaxTotalBytes = 64L << 30);

/// <summary>
/// Applies OCI layer tars, in order, to a staging directory (image-spec <c>layer.md</c>): regular
/// files, directories, symlinks, hard links, modes (setuid/setgid/sticky included), ownership,
/// mtimes, whiteouts (<c>.wh.NAME</c>) and opaque whiteouts (<c>.wh..wh..opq</c>).
/// Invariants: nothing is ever written outside <see cref="Root"/>. Entry names with <c>..</c> or
/// a leading <c>/</c> are refused; every parent is resolved one component at a time without
/// following symlinks, and a parent that is a symlink or not a directory is refused; existing
/// targets are unlinked, never opened through; hard-link targets must be non-directories inside
/// the root. Device nodes and FIFOs are skipped (mke2fs -d copies them, but creating them needs
/// mknod; workspaces get /dev from devtmpfs).
/// </summary>
public sealed class LayerApplier
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";
    private const UnixFileMode DirMode = (UnixFileMode)0b111_101_101;

    private readonly LayerLimits _limits;
    private readonly bool _isRoot = Environment.IsPrivilegedProcess;
    private HashSet<string> _touchedThisLayer = new(StringComparer.Ordinal);
    private readonly List<(string Path, UnixFileMode Mode, DateTimeOffset MTime)> _pendingDirs = [];

    /// <summary>Applies into <paramref name="root"/>, which must exist.</summary>
    public LayerApplier(string root, LayerLimits? limits = null)
    {
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        if (!Directory.Exists(Root)) throw new DirectoryNotFoundException(Root);
        _limits = limits ?? new LayerLimits();
    }

    /// <summary>The staging directory.</summary>
    public string Root { get; }

    /// <summary>Tar entries seen so far, over all layers.</summary>
    public long EntryCount { get; private set; }

    /// <summary>Regular-file bytes written so far, over all layers.</summary>
    public long TotalBytes { get; private set; }

    /// <summary>Device nodes and FIFOs skipped.</summary>
    public int SkippedSpecialFiles { get; private set; }

    /// <summary>The decompressed tar stream of a layer blob, by media type. zstd is not supported yet.</summary>
    public static Stream OpenDecompressed(Stream blob, string mediaType)
    {
        if (mediaType.EndsWith("+gzip", StringComparison.Ordinal) || mediaType.EndsWith(".gzip", StringComparison.Ordinal))
            return new GZipStream(blob, CompressionMode.Decompress);
        if (mediaType.EndsWith("+zstd", StringComparison.Ordinal))
            throw MicroagentException.Unsupported($"layer media type {mediaType} (zstd) is not supported yet", "use an image with gzip layers");
        if (mediaType.EndsWith(".tar", StringComparison.Ordinal) || mediaType.EndsWith(".tar.v1", StringComparison.Ordinal))
            return blob;
        throw MicroagentException.Unsupported($"layer media type `{mediaType}` is not supported", "use an OCI or Docker image with tar or tar+gzip layers");
    }

    /// <summary>Applies one uncompressed layer tar on top of what is already in the root.</summary>
    public void Apply(Stream tar, CancellationToken ct = default)
    {
        _touchedThisLayer = new HashSet<string>(StringComparer.Ordinal);
        _pendingDirs.Clear();
        using var reader = new TarReader(tar, leaveOpen: true);
        TarEntry? entry;
        while ((entry = NextEntry(reader)) is not null)
        {
            ct.ThrowIfCancellationRequested();
            if (++EntryCount > _limits.MaxEntries)
                throw MicroagentException.Invalid($"image has more than {_limits.MaxEntries} entries; refusing it as a possible decompression bomb",
                    "use a smaller image, or raise the limit");
            try
            {
                ApplyEntry(entry);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not MicroagentException)
            {
                throw MicroagentException.Permanent($"cannot apply layer entry `{entry.Name}`: {e.Message}",
                    "check free space and permissions in the state directory", e);
            }
        }
        // Directory modes and times last: creating children changes mtimes, and a read-only mode would block them.
        for (int i = _pendingDirs.Count - 1; i >= 0; i--)
        {
            var (path, mode, mtime) = _pendingDirs[i];
            File.SetUnixFileMode(path, mode);
            Ownership.SetTimesNoFollow(path, mtime);
        }
        _pendingDirs.Clear();
    }

    private static TarEntry? NextEntry(TarReader reader)
    {
        try
        {
            return reader.GetNextEntry(copyData: false);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw MicroagentException.Invalid($"layer is not a valid tar archive: {e.Message}", "re-export or re-pull the image");
        }
    }

    private void ApplyEntry(TarEntry entry)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes) return;
        string[] parts = SplitName(entry.Name);
        if (parts.Length == 0) return; // the root itself: staging root keeps 0755 root:root (mke2fs root_owner)
        string rel = string.Join('/', parts);
        string name = parts[^1];

        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            string? parent = ResolveParent(parts, entry.Name, create: false);
            if (parent is null) return;
            if (name == OpaqueWhiteout)
            {
                string parentRel = string.Join('/', parts[..^1]);
                foreach (string child in Directory.EnumerateFileSystemEntries(parent).ToList())
                {
                    string childRel = parentRel.Length == 0 ? Path.GetFileName(child) : parentRel + "/" + Path.GetFileName(child);
                    if (!_touchedThisLayer.Contains(childRel)) Remove(child);
                }
            }
            else
            {
                string victim = name[WhiteoutPrefix.Length..];
                if (victim.Length == 0 || victim is "." or ".." || victim.Contains('/'))
                    throw Hostile(entry.Name, "malformed whiteout");
                Remove(Path.Combine(parent, victim));
            }
            return;
        }

        string dir = ResolveParent(parts, entry.Name, create: true)!;
        string dest = Path.Combine(dir, name);
        Kind existing = Lstat(dest);
        _touchedThisLayer.Add(rel);

        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (existing != Kind.Directory)
                {
                    if (existing != Kind.None) Remove(dest);
                    Directory.CreateDirectory(dest);
                }
                SetOwner(dest, entry);
                _pendingDirs.Add((dest, entry.Mode, entry.ModificationTime));
                break;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                if (existing != Kind.None) Remove(dest);
                WriteFile(dest, entry);
                SetOwner(dest, entry);
                File.SetUnixFileMode(dest, entry.Mode);
                Ownership.SetTimesNoFollow(dest, entry.ModificationTime);
                break;

            case TarEntryType.SymbolicLink:
                if (string.IsNullOrEmpty(entry.LinkName)) throw Hostile(entry.Name, "symbolic link without a target");
                if (existing != Kind.None) Remove(dest);
                // The target text is stored verbatim; it is never followed here, and inside the guest it resolves within the guest root.
                File.CreateSymbolicLink(dest, entry.LinkName);
                SetOwner(dest, entry);
                Ownership.SetTimesNoFollow(dest, entry.ModificationTime);
                break;

            case TarEntryType.HardLink:
                string[] targetParts = SplitName(entry.LinkName);
                if (targetParts.Length == 0) throw Hostile(entry.Name, "hard link to the root");
                string? targetDir = ResolveParent(targetParts, entry.Name, create: false);
                string target = targetDir is null ? "" : Path.Combine(targetDir, targetParts[^1]);
                Kind tk = targetDir is null ? Kind.None : Lstat(target);
                if (tk is Kind.None) throw Hostile(entry.Name, $"hard link target `{entry.LinkName}` does not exist in the image");
                if (tk is Kind.Directory) throw Hostile(entry.Name, $"hard link target `{entry.LinkName}` is a directory");
                if (target == dest) break;
                if (existing != Kind.None) Remove(dest);
                Ownership.Link(target, dest);
                break;

            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                SkippedSpecialFiles++;
                break;

            default:
                throw MicroagentException.Unsupported($"layer entry `{entry.Name}` has unsupported tar type {entry.EntryType}",
                    "rebuild the image with a standard tar (GNU/PAX)");
        }
    }

    private void WriteFile(string dest, TarEntry entry)
    {
        if (entry.Length < 0 || TotalBytes + entry.Length > _limits.MaxTotalBytes)
            throw MicroagentException.Invalid(
                $"image content exceeds {_limits.MaxTotalBytes} bytes at `{entry.Name}`; refusing it as a possible decompression bomb",
                "use a smaller image, or raise the limit");
        using var fs = new FileStream(dest, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, PreallocationSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        if (entry.DataStream is { } data)
        {
            byte[] buf = new byte[1 << 16];
            long written = 0;
            int n;
            while ((n = data.Read(buf)) > 0)
            {
                written += n;
                if (written > entry.Length) throw Hostile(entry.Name, "more data than its header declares");
                fs.Write(buf, 0, n);
            }
            TotalBytes += written;
        }
    }

    private void SetOwner(string path, TarEntry entry)
    {
        int errno = Ownership.TryLchown(path, entry.Uid, entry.Gid);
        if (errno == 0 || (errno == Ownership.EPERM && !_isRoot)) return; // unprivileged: ownership is best effort
        throw new SyscallException("lchown", errno);
    }

    /// <summary>
    /// Host path of the directory that holds <paramref name="parts"/>' last component, walking from
    /// the root with lstat. Missing directories are created (mode 0755) when <paramref name="create"/>
    /// is set, else null is returned. A symlink or non-directory on the way is refused.
    /// </summary>
    private string? ResolveParent(string[] parts, string entryName, bool create)
    {
        string cur = Root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            cur = Path.Combine(cur, parts[i]);
            switch (Lstat(cur))
            {
                case Kind.Directory:
                    break;
                case Kind.None when create:
                    Directory.CreateDirectory(cur, DirMode);
                    break;
                case Kind.None:
                    return null;
                case Kind.Symlink:
                    throw Hostile(entryName, $"its parent `{string.Join('/', parts[..(i + 1)])}` is a symbolic link");
                default:
                    throw Hostile(entryName, $"its parent `{string.Join('/', parts[..(i + 1)])}` is not a directory");
            }
        }
        return cur;
    }

    private enum Kind { None, Directory, File, Symlink }

    /// <summary>What is at <paramref name="path"/> itself, without following a final symlink.</summary>
    private static Kind Lstat(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return Kind.Symlink;
        if (Directory.Exists(path)) return Kind.Directory;
        return info.Exists ? Kind.File : Kind.None;
    }

    private static void Remove(string path)
    {
        switch (Lstat(path))
        {
            case Kind.Directory:
                Directory.Delete(path, recursive: true);
                break;
            case Kind.File or Kind.Symlink:
                File.Delete(path);
                break;
        }
    }

    /// <summary>Components of a tar entry name; refuses absolute names and <c>..</c>.</summary>
    private static string[] SplitName(string name)
    {
        if (name.StartsWith('/')) throw Hostile(name, "absolute path");
        if (name.Contains('\0')) throw Hostile(name, "NUL in name");
        string[] parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains("..")) throw Hostile(name, "`..` component");
        return parts;
    }

    private static MicroagentException Hostile(string name, string why)
        => MicroagentException.Invalid($"layer entry `{name}` refused: {why}", "the image is malformed or hostile; do not use it");
}
