using System.Formats.Tar;
using Microagent.Access;
using Microagent.Errors;
using Microagent.Interop;

namespace Microagent.Workspaces;

/// <summary>
/// <c>cp</c> as a tar stream through exec: host→guest streams a ustar/pax archive (modes, links kept) into
/// <c>tar -x</c> in the guest; guest→host reads <c>tar -c</c> from the guest's stdout and extracts it here.
/// Invariant: extraction never writes outside the destination (no absolute names, no '..', no link escapes).
/// </summary>
internal static class WorkspaceCopy
{
    /// <summary>Top-level name inside archives sent to the guest; the guest script renames it into place.</summary>
    public const string Staged = "payload";

    /// <summary>
    /// Guest side of host→guest: <c>$1</c> destination, <c>$2</c> source base name. Like <c>cp -r</c>: into an existing
    /// directory under the source's name, else to the destination path itself (whose parent must exist).
    /// </summary>
    public const string ReceiveScript = """
        set -e
        dest="$1"; name="$2"
        if [ -d "$dest" ]; then target="${dest%/}/$name"; else target="$dest"; fi
        parent=$(dirname "$target")
        [ -d "$parent" ] || { echo "no such directory: $parent" >&2; exit 2; }
        tmp=$(mktemp -d "$parent/.microagent-cp.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        tar -x -p -f - -C "$tmp"
        if [ -d "$target" ] && [ -d "$tmp/payload" ] && [ ! -L "$target" ]; then
          cp -a "$tmp/payload/." "$target/"
        else
          rm -rf "$target" 2>/dev/null || true
          mv "$tmp/payload" "$target"
        fi
        """;

    /// <summary>Guest side of guest→host: <c>$1</c> the path to archive.</summary>
    public const string SendScript = """
        set -e
        src="${1%/}"; [ -n "$src" ] || src=/
        [ -e "$src" ] || [ -L "$src" ] || { echo "no such file or directory: $1" >&2; exit 2; }
        cd "$(dirname "$src")"
        exec tar -c -f - "$(basename "$src")"
        """;

    /// <summary>Writes <paramref name="hostPath"/> (file, directory tree or symlink) as <see cref="Staged"/> into a tar stream.</summary>
    public static (int Entries, long Bytes) WriteArchive(string hostPath, Stream output)
    {
        using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        var archive = new ArchiveWriter(writer);
        archive.Add(hostPath, Staged);
        if (new FileInfo(hostPath).LinkTarget is null && Directory.Exists(hostPath)) archive.AddChildren(hostPath);
        return (archive.Entries, archive.Bytes);
    }

    /// <summary>
    /// Writes the pinned host <paramref name="source"/> as <see cref="Staged"/>: a directory tree is read below its descriptor
    /// (entries inside are archived as they are, symlinks as links, never followed); a regular file is read through a
    /// descriptor reopened from the pin. Anything else is refused.
    /// </summary>
    public static (int Entries, long Bytes) WriteArchive(HostPath source, Stream output)
    {
        var st = source.Stat;
        if (!st.IsDirectory && !st.IsRegularFile)
            throw new MicroagentException(ErrorKind.Invalid, $"{source.Given} is not a regular file or directory") { Field = "host_path" };
        using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        using var data = st.IsRegularFile ? source.OpenRead() : null;
        var root = new PaxTarEntry(st.IsDirectory ? TarEntryType.Directory : TarEntryType.RegularFile, Staged)
        {
            Mode = (UnixFileMode)st.Permissions,
            Uid = (int)st.Uid,
            Gid = (int)st.Gid,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(st.ModifiedSeconds),
        };
        if (data is not null) root.DataStream = data;
        writer.WriteEntry(root);
        var archive = new ArchiveWriter(writer) { Entries = 1, Bytes = data?.Length ?? 0 };
        if (st.IsDirectory) archive.AddChildren(source.ProcPath);
        return (archive.Entries, archive.Bytes);
    }

    /// <summary>Adds host entries to an archive by path (lstat: a symlink is archived as a link), counting entries and file bytes.</summary>
    private sealed class ArchiveWriter(TarWriter writer)
    {
        public int Entries { get; set; }
        public long Bytes { get; set; }

        public void Add(string path, string name)
        {
            var info = new FileInfo(path);
            writer.WriteEntry(path, name);
            Entries++;
            if (info.LinkTarget is null && !info.Attributes.HasFlag(FileAttributes.Directory)) Bytes += info.Length;
        }

        /// <summary>Everything below <paramref name="dir"/>, recursively; symlinked directories are archived as links, not entered.</summary>
        public void AddChildren(string dir)
        {
            foreach (string path in Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions
            {
                RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false,
            }))
                Add(path, $"{Staged}/{Path.GetRelativePath(dir, path)}");
        }
    }

    /// <summary>
    /// Extracts an archive whose top-level entry is <paramref name="rootName"/> to <paramref name="destination"/>:
    /// into it under <paramref name="rootName"/> when it is an existing directory, else as that path.
    /// The archive comes from the guest and is untrusted: every entry's parent is walked from the extraction root one
    /// component at a time with lstat and must consist of real directories (a symlink anywhere on the way is refused,
    /// so a link entry cannot redirect later writes to the host); a final-component symlink is unlinked, never written
    /// through; hard-link targets must be relative, free of <c>..</c> and name a regular file inside the extraction;
    /// directory modes are applied last, never through a symlink.
    /// </summary>
    public static (string Target, int Entries, long Bytes) ExtractArchive(Stream input, string rootName, string destination)
    {
        CheckRootName(rootName);
        string dest = Path.GetFullPath(destination);
        string target = Directory.Exists(dest) ? Path.Combine(dest, rootName) : dest;
        string parent = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(parent))
            throw new WorkspaceCopyException($"no such directory: {parent}", "create the destination directory first");
        return ExtractTo(input, rootName, target, exclusive: false);
    }

    /// <summary>Refuses a top-level archive name that is not one path component.</summary>
    public static void CheckRootName(string rootName)
    {
        if (rootName.Length == 0 || rootName is "." or ".." || rootName.Contains('/') || rootName.Contains('\0'))
            throw new WorkspaceCopyException($"cannot copy `{rootName}` from the guest: name a file or directory below `/`",
                "copy a named path such as /home/user/project");
    }

    /// <summary>
    /// Extracts to exactly <paramref name="target"/> (whose parent exists; a pinned <c>/proc/self/fd/N/NAME</c> path works).
    /// <paramref name="exclusive"/>: the top-level entry is created with <c>O_EXCL</c>/<c>mkdir</c> semantics, so anything
    /// already there (a symlink included) fails the copy with <see cref="ErrorKind.Conflict"/> instead of being replaced.
    /// </summary>
    public static (string Target, int Entries, long Bytes) ExtractTo(Stream input, string rootName, string target, bool exclusive)
    {
        int entries = 0;
        long bytes = 0;
        var dirModes = new List<(string Path, UnixFileMode Mode)>();
        using var reader = new TarReader(input);
        while (reader.GetNextEntry() is { } entry)
        {
            string[] parts = MemberParts(entry.Name, rootName)
                ?? throw new WorkspaceCopyException($"unexpected entry '{entry.Name}' in the archive from the guest");
            if (entry.EntryType is not (TarEntryType.Directory or TarEntryType.RegularFile or TarEntryType.V7RegularFile
                or TarEntryType.ContiguousFile or TarEntryType.SymbolicLink or TarEntryType.HardLink))
                continue; // devices, fifos, metadata entries: not copied
            string path = ResolveEntry(target, parts, entry.Name);
            bool excl = exclusive && parts.Length == 0 && entries == 0;
            switch (entry.EntryType)
            {
                case TarEntryType.Directory when excl:
                    int mkdir = PathHandles.TryMkdir(path, 0x1C0); // 0700 until the archive's mode is applied
                    if (mkdir != 0) throw Exists(mkdir);
                    dirModes.Add((path, (UnixFileMode)entry.Mode));
                    break;
                case TarEntryType.Directory:
                    if (Lstat(path) is Kind.File or Kind.Symlink) File.Delete(path);
                    Directory.CreateDirectory(path);
                    dirModes.Add((path, (UnixFileMode)entry.Mode));
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    if (!excl && Lstat(path) is Kind.File or Kind.Symlink) File.Delete(path); // unlinked, never written through
                    try { entry.ExtractToFile(path, overwrite: false); } // O_CREAT|O_EXCL: never through a symlink
                    catch (IOException) when (excl && Lstat(path) != Kind.None) { throw Exists(Errno.EEXIST); }
                    if (Lstat(path) is not Kind.File) throw Refused(entry.Name, "it did not extract as a regular file");
                    File.SetUnixFileMode(path, (UnixFileMode)entry.Mode);
                    bytes += entry.Length;
                    break;
                case TarEntryType.SymbolicLink:
                    if (!excl && Lstat(path) is Kind.File or Kind.Symlink) File.Delete(path);
                    File.CreateSymbolicLink(path, entry.LinkName); // created as a link; nothing is ever written through it
                    break;
                case TarEntryType.HardLink:
                    if (parts.Length == 0) throw Refused(entry.Name, "the archive root is a hard link");
                    string source = HardLinkSource(target, entry.LinkName, rootName, entry.Name);
                    if (Lstat(path) is Kind.File or Kind.Symlink) File.Delete(path);
                    File.Copy(source, path);
                    break;
            }
            entries++;
        }
        if (entries == 0) throw new WorkspaceCopyException("the guest sent an empty archive");
        foreach (var (path, mode) in Enumerable.Reverse(dirModes))
            if (IsRealDirectoryChain(target, path)) File.SetUnixFileMode(path, mode); // never through a symlink
        return (target, entries, bytes);
    }

    /// <summary>Components of an archive member below <paramref name="rootName"/> (empty for the root itself); null when it is not under it.</summary>
    private static string[]? MemberParts(string name, string rootName)
    {
        string trimmed = name.TrimEnd('/');
        string rel;
        if (trimmed == rootName) rel = "";
        else if (trimmed.StartsWith(rootName + "/", StringComparison.Ordinal)) rel = trimmed[(rootName.Length + 1)..];
        else return null;
        if (rel.StartsWith('/') || rel.Contains('\0'))
            throw Refused(name, "it escapes the destination");
        string[] parts = rel.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains("..")) throw Refused(name, "it escapes the destination");
        return parts;
    }

    /// <summary>
    /// Host path of an entry: the extraction root and every parent component are lstat'ed and must be real
    /// directories (missing ones are created); a symlink or other non-directory anywhere on the way is refused.
    /// </summary>
    private static string ResolveEntry(string target, string[] parts, string entryName)
    {
        if (parts.Length == 0) return target;
        string cur = target;
        for (int i = -1; i < parts.Length - 1; i++)
        {
            if (i >= 0) cur = Path.Combine(cur, parts[i]);
            switch (Lstat(cur))
            {
                case Kind.Directory:
                    break;
                case Kind.None:
                    Directory.CreateDirectory(cur);
                    if (Lstat(cur) != Kind.Directory) throw Refused(entryName, "its parent could not be created as a directory");
                    break;
                case Kind.Symlink:
                    throw Refused(entryName, $"its parent `{Path.GetRelativePath(target, cur)}` is a symbolic link");
                default:
                    throw Refused(entryName, $"its parent `{Path.GetRelativePath(target, cur)}` is not a directory");
            }
        }
        string path = Path.Combine(cur, parts[^1]);
        if (!IsUnder(target, path)) throw Refused(entryName, "it escapes the destination");
        return path;
    }

    /// <summary>
    /// The regular file inside the extraction that a hard-link entry names: the link name must be relative, free of
    /// <c>..</c>, reached through real directories only, and not itself a symlink or directory.
    /// </summary>
    private static string HardLinkSource(string target, string linkName, string rootName, string entryName)
    {
        if (string.IsNullOrEmpty(linkName) || linkName.StartsWith('/') || linkName.Contains('\0'))
            throw Refused(entryName, $"hard link target `{linkName}` is absolute or empty");
        if (linkName.Split('/').Contains(".."))
            throw Refused(entryName, $"hard link target `{linkName}` contains `..`");
        string[] parts = MemberParts(linkName, rootName) ?? linkName.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        string source = target;
        foreach (string c in parts)
        {
            if (Lstat(source) != Kind.Directory)
                throw Refused(entryName, $"hard link target `{linkName}` is not inside the extracted tree");
            source = Path.Combine(source, c);
        }
        if (!IsUnder(target, source) && source != target)
            throw Refused(entryName, $"hard link target `{linkName}` resolves outside the destination");
        if (Lstat(source) != Kind.File)
            throw Refused(entryName, $"hard link target `{linkName}` is not a regular file extracted from the archive");
        return source;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="target"/> or under it with every component a real directory.</summary>
    private static bool IsRealDirectoryChain(string target, string path)
    {
        if (path != target && !IsUnder(target, path)) return false;
        string cur = target;
        if (Lstat(cur) != Kind.Directory) return false;
        foreach (string c in Path.GetRelativePath(target, path).Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (c == ".") continue;
            if (c == "..") return false;
            cur = Path.Combine(cur, c);
            if (Lstat(cur) != Kind.Directory) return false;
        }
        return true;
    }

    private static bool IsUnder(string root, string path)
    {
        string rel = Path.GetRelativePath(root, path);
        return rel != "." && rel != ".." && !rel.StartsWith("../", StringComparison.Ordinal) && !Path.IsPathRooted(rel);
    }

    private enum Kind { None, Directory, File, Symlink, Other }

    /// <summary>What is at <paramref name="path"/> itself (lstat: a final symlink is not followed).</summary>
    private static Kind Lstat(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return Kind.Symlink;
        if (Directory.Exists(path)) return Kind.Directory;
        if (info.Exists) return Kind.File;
        try { File.GetAttributes(path); return Kind.Other; }
        catch (IOException) { return Kind.None; }
        catch (UnauthorizedAccessException) { return Kind.Other; }
    }

    private static MicroagentException Exists(int errno) =>
        new(ErrorKind.Conflict, $"the copy's destination appeared while copying ({Libc.Describe(errno)})",
            "pass overwrite: true to replace it, or choose another host_path") { Field = "overwrite" };

    private static WorkspaceCopyException Refused(string entryName, string why)
        => new($"refusing archive entry '{entryName}' from the guest: {why}", "the guest sent a malformed or hostile archive; the copy was stopped");
}
