using System.Formats.Tar;
using System.IO.Compression;
using Microagent.Errors;
using Microagent.Interop;

namespace Microagent.Images;

/// <summary>Caps that stop a hostile image (decompression bomb, inode flood) before it fills the disk.</summary>
/// <param name="MaxEntries">Most tar entries over all layers.</param>
/// <param name="MaxTotalBytes">Most regular-file bytes over all layers.</param>
public sealed record LayerLimits(long MaxEntries = 2_000_000, long MaxTotalBytes = 32L << 30);

/// <summary>
/// Applies OCI layer tars, in order, to a staging directory (image-spec <c>layer.md</c>): regular
/// files, directories, symlinks, hard links, device nodes and FIFOs, ownership, modes
/// (setuid/setgid/sticky included), mtimes, xattrs (PAX <c>SCHILY.xattr.*</c>, file capabilities
/// included), whiteouts (<c>.wh.NAME</c>) and opaque whiteouts (<c>.wh..wh..opq</c>).
/// Invariants: nothing is ever written outside <see cref="Root"/>. Entry names with <c>..</c> or a
/// leading <c>/</c> are refused. Parents are resolved one component at a time, following symlinks
/// the way the guest will (merged-usr images need <c>lib -&gt; usr/lib</c>), but every resolution
/// is clamped to the root: an absolute target restarts at the root and <c>..</c> stops at it, so no
/// symlink can lead outside. The final component is never followed: an existing entry there is
/// unlinked, never opened through. Hard-link targets must be existing non-directories in the root.
/// A path may appear only once per layer (directories may repeat).
/// </summary>
internal sealed class LayerApplier
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";
    private const UnixFileMode DirMode = (UnixFileMode)0b111_101_101;
    private const int MaxSymlinkHops = 40;

    private readonly LayerLimits _limits;
    private readonly bool _isRoot = Environment.IsPrivilegedProcess;
    private Dictionary<string, bool> _seenThisLayer = new(StringComparer.Ordinal); // host path -> is directory
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

    /// <summary>Device nodes and FIFOs that could not be created (not root).</summary>
    public int SkippedSpecialFiles { get; private set; }

    /// <summary>The decompressed tar stream of a layer blob, by media type (gzip, zstd or plain tar).</summary>
    public static Stream OpenDecompressed(Stream blob, string mediaType)
    {
        if (mediaType.EndsWith("+gzip", StringComparison.Ordinal) || mediaType.EndsWith(".gzip", StringComparison.Ordinal))
            return new GZipStream(blob, CompressionMode.Decompress);
        if (mediaType.EndsWith("+zstd", StringComparison.Ordinal) || mediaType.EndsWith(".zstd", StringComparison.Ordinal))
            return new ZstdStream(blob);
        if (mediaType.EndsWith(".tar", StringComparison.Ordinal) || mediaType.EndsWith(".tar.v1", StringComparison.Ordinal))
            return blob;
        throw MicroagentException.Unsupported($"layer media type `{mediaType}` is not supported", "use an OCI or Docker image with tar, tar+gzip or tar+zstd layers");
    }

    /// <summary>Applies one uncompressed layer tar on top of what is already in the root.</summary>
    public void Apply(Stream tar, CancellationToken ct = default)
    {
        _seenThisLayer = new Dictionary<string, bool>(StringComparer.Ordinal);
        _pendingDirs.Clear();
        using var recorder = new TarHeaderRecorder(tar);
        using var reader = new TarReader(recorder, leaveOpen: true);
        TarEntry? entry;
        long headerStart = 0;
        while ((entry = NextEntry(reader)) is not null)
        {
            ct.ThrowIfCancellationRequested();
            if (++EntryCount > _limits.MaxEntries)
                throw MicroagentException.Invalid($"image has more than {_limits.MaxEntries} entries; refusing it as a possible decompression bomb",
                    "use a smaller image, or raise the limit");
            long dataStart = recorder.Position; // TarReader stops right after the header blocks
            var xattrs = Xattrs(entry, recorder.RecordedSince(headerStart));
            try
            {
                ApplyEntry(entry, xattrs);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not MicroagentException)
            {
                if (e is IOException { HResult: Errno.ENOSPC } || (e is SyscallException s && s.Errno == Errno.ENOSPC))
                    throw new MicroagentException(ErrorKind.ResourceExhausted, $"no space left while applying layer entry `{entry.Name}`",
                        "free disk space in the state directory", e);
                throw MicroagentException.Permanent($"cannot apply layer entry `{entry.Name}`: {e.Message}",
                    "check free space and permissions in the state directory", e);
            }
            long dataLength = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile ? entry.Length : 0;
            headerStart = dataStart + RoundUp512(dataLength);
            recorder.RecordFrom(headerStart);
        }
        // Directory modes and times last: creating children changes mtimes, and a read-only mode would block them.
        // Entries under a path removed later in the layer were dropped by Remove; as defence in depth each target
        // is re-checked so that no symlink between the root and it (nor it itself) is followed by chmod.
        for (int i = _pendingDirs.Count - 1; i >= 0; i--)
        {
            var (path, mode, mtime) = _pendingDirs[i];
            if (!IsPlainDirectoryUnderRoot(path)) continue;
            File.SetUnixFileMode(path, mode);
            Ownership.SetTimesNoFollow(path, mtime);
        }
        _pendingDirs.Clear();
    }

    private static long RoundUp512(long v) => (v + 511) / 512 * 512;

    private static TarEntry? NextEntry(TarReader reader)
    {
        try
        {
            return reader.GetNextEntry(copyData: false);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or OverflowException)
        {
            throw MicroagentException.Invalid($"layer is not a valid tar archive: {e.Message}", "re-export or re-pull the image");
        }
    }

    /// <summary>
    /// The entry's xattrs with their exact bytes: System.Formats.Tar decodes PAX values as UTF-8,
    /// which mangles binary values such as <c>security.capability</c>, so they are re-read from the raw header.
    /// </summary>
    private static List<(string Name, byte[] Value)> Xattrs(TarEntry entry, ReadOnlySpan<byte> rawHeaders)
    {
        var list = new List<(string, byte[])>();
        if (entry is not PaxTarEntry pax) return list;
        bool any = false;
        foreach (var key in pax.ExtendedAttributes.Keys)
            if (key.StartsWith(PaxXattrs.SchilyPrefix, StringComparison.Ordinal) || key.StartsWith(PaxXattrs.LibarchivePrefix, StringComparison.Ordinal)) { any = true; break; }
        if (!any) return list;
        if (PaxXattrs.TryParse(rawHeaders, list)) return list;
        list.Clear();
        foreach (var (k, v) in pax.ExtendedAttributes)
            if (k.StartsWith(PaxXattrs.SchilyPrefix, StringComparison.Ordinal))
                list.Add((k[PaxXattrs.SchilyPrefix.Length..], System.Text.Encoding.UTF8.GetBytes(v)));
        return list;
    }

    private void ApplyEntry(TarEntry entry, List<(string Name, byte[] Value)> xattrs)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes) return;
        string[] parts = SplitName(entry.Name);
        if (parts.Length == 0) return; // the root itself: staging root keeps 0755 root:root (mke2fs root_owner)
        string name = parts[^1];

        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            string? parent = ResolveParent(parts, entry.Name, create: false);
            if (parent is null) return;
            if (name == OpaqueWhiteout)
            {
                foreach (string child in Directory.EnumerateFileSystemEntries(parent).ToList())
                    if (!_seenThisLayer.ContainsKey(child)) Remove(child);
            }
            else
            {
                string victim = name[WhiteoutPrefix.Length..];
                if (victim.Length == 0 || victim is "." or "..") throw Hostile(entry.Name, "malformed whiteout");
                Remove(Path.Combine(parent, victim));
            }
            return;
        }

        string dir = ResolveParent(parts, entry.Name, create: true)!;
        string dest = Path.Combine(dir, name);
        bool isDir = entry.EntryType is TarEntryType.Directory;
        if (_seenThisLayer.TryGetValue(dest, out bool wasDir) && !(wasDir && isDir))
            throw Hostile(entry.Name, "duplicate entry in one layer");
        _seenThisLayer[dest] = isDir;
        Kind existing = Lstat(dest);

        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (existing != Kind.Directory)
                {
                    if (existing != Kind.None) Remove(dest);
                    Directory.CreateDirectory(dest, DirMode);
                }
                SetOwner(dest, entry);
                SetXattrs(dest, xattrs);
                _pendingDirs.Add((dest, entry.Mode, entry.ModificationTime));
                break;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                if (existing != Kind.None) Remove(dest);
                WriteFile(dest, entry);
                SetOwner(dest, entry);       // chown clears setuid/setgid and capabilities: mode and xattrs after it
                File.SetUnixFileMode(dest, entry.Mode);
                SetXattrs(dest, xattrs);
                Ownership.SetTimesNoFollow(dest, entry.ModificationTime);
                break;

            case TarEntryType.SymbolicLink:
                if (string.IsNullOrEmpty(entry.LinkName)) throw Hostile(entry.Name, "symbolic link without a target");
                if (existing != Kind.None) Remove(dest);
                // The target text is stored verbatim; it is resolved here only through ResolveParent (clamped to the root).
                File.CreateSymbolicLink(dest, entry.LinkName);
                SetOwner(dest, entry);
                SetXattrs(dest, xattrs);
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
                Ownership.Link(target, dest); // link(2) does not follow a symlink target: the link stays inside the root
                break;

            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo when entry is PosixTarEntry:
                if (existing != Kind.None) Remove(dest);
                if (!_isRoot) { SkippedSpecialFiles++; break; }
                uint type = entry.EntryType switch
                {
                    TarEntryType.CharacterDevice => FileNodes.S_IFCHR,
                    TarEntryType.BlockDevice => FileNodes.S_IFBLK,
                    _ => FileNodes.S_IFIFO,
                };
                FileNodes.Mknod(dest, type | ((uint)entry.Mode & 0xFFF), (uint)((PosixTarEntry)entry).DeviceMajor, (uint)((PosixTarEntry)entry).DeviceMinor);
                SetOwner(dest, entry);
                File.SetUnixFileMode(dest, entry.Mode);
                SetXattrs(dest, xattrs);
                Ownership.SetTimesNoFollow(dest, entry.ModificationTime);
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
            Mode = FileMode.CreateNew, Access = FileAccess.Write, PreallocationSize = 0, BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        if (entry.DataStream is { } data)
        {
            byte[] buf = new byte[1 << 17];
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
        if (errno == 0 || (errno == Errno.EPERM && !_isRoot)) return; // unprivileged: ownership is best effort
        throw new SyscallException("lchown", errno);
    }

    private void SetXattrs(string path, List<(string Name, byte[] Value)> xattrs)
    {
        foreach (var (name, value) in xattrs)
        {
            int errno = FileNodes.TrySetXattr(path, name, value);
            if (errno == 0) continue;
            // Unprivileged callers cannot set trusted.*/security.*; symlinks take no user.* xattrs.
            if (errno is Errno.EPERM or Errno.EOPNOTSUPP && (!_isRoot || Lstat(path) == Kind.Symlink)) continue;
            throw MicroagentException.Permanent($"cannot set xattr `{name}` on `{Path.GetRelativePath(Root, path)}`: {Libc.Describe(errno)}",
                "the state directory's filesystem must support extended attributes (ext4, xfs, tmpfs)");
        }
    }

    /// <summary>
    /// Host path of the directory that holds <paramref name="parts"/>' last component. Walks from the
    /// root with lstat, following symlinks but clamping each resolution to the root (an absolute
    /// target restarts at the root, <c>..</c> never goes above it). Missing directories are created
    /// (0755) when <paramref name="create"/> is set, else null is returned; a non-directory is refused.
    /// </summary>
    private string? ResolveParent(string[] parts, string entryName, bool create)
    {
        var resolved = new List<string>();
        var pending = new LinkedList<string>(parts[..^1]);
        int hops = 0;
        while (pending.First is { } node)
        {
            string c = node.Value;
            pending.RemoveFirst();
            if (c is "" or ".") continue;
            if (c == "..") { if (resolved.Count > 0) resolved.RemoveAt(resolved.Count - 1); continue; }
            string cur = Path.Combine(Root, Path.Combine([.. resolved, c]));
            switch (Lstat(cur))
            {
                case Kind.Directory:
                    resolved.Add(c);
                    break;
                case Kind.None when create:
                    Directory.CreateDirectory(cur, DirMode);
                    resolved.Add(c);
                    break;
                case Kind.None:
                    return null;
                case Kind.Symlink:
                    if (++hops > MaxSymlinkHops) throw Hostile(entryName, "too many levels of symbolic links");
                    string target = new FileInfo(cur).LinkTarget!;
                    if (target.StartsWith('/')) resolved.Clear();
                    var segments = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
                    for (int i = segments.Length - 1; i >= 0; i--) pending.AddFirst(segments[i]);
                    break;
                default:
                    throw Hostile(entryName, $"its parent `{string.Join('/', [.. resolved, c])}` is not a directory");
            }
        }
        return resolved.Count == 0 ? Root : Path.Combine(Root, Path.Combine([.. resolved]));
    }

    private enum Kind { None, Directory, File, Symlink }

    /// <summary>What is at <paramref name="path"/> itself, without following a final symlink.</summary>
    private static Kind Lstat(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return Kind.Symlink;
        if (Directory.Exists(path)) return Kind.Directory;
        return info.Exists || IsSpecial(path) ? Kind.File : Kind.None;
    }

    private static bool IsSpecial(string path)
    {
        try { return (File.GetAttributes(path) & FileAttributes.Directory) == 0; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Whether <paramref name="path"/> lies under <see cref="Root"/> and every component from the root to it,
    /// itself included, is a real directory (lstat: no symlink anywhere on the way).
    /// </summary>
    private bool IsPlainDirectoryUnderRoot(string path)
    {
        string rel = Path.GetRelativePath(Root, path);
        if (rel == ".") return false;
        if (Path.IsPathRooted(rel) || rel == ".." || rel.StartsWith("../", StringComparison.Ordinal)) return false;
        string cur = Root;
        foreach (string c in rel.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (c is "." or "..") return false;
            cur = Path.Combine(cur, c);
            if (Lstat(cur) != Kind.Directory) return false;
        }
        return true;
    }

    /// <summary>Removes <paramref name="path"/> (never following a symlink) and forgets pending directory metadata at or under it.</summary>
    private void Remove(string path)
    {
        _pendingDirs.RemoveAll(p => IsAtOrUnder(p.Path, path));
        RemoveEntry(path);
    }

    private static bool IsAtOrUnder(string candidate, string path)
        => candidate == path || candidate.StartsWith(path + "/", StringComparison.Ordinal);

    private static void RemoveEntry(string path)
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
