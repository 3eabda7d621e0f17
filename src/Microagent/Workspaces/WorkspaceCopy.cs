using System.Formats.Tar;

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
        int entries = 0;
        long bytes = 0;
        using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        void Add(string path, string name)
        {
            var info = new FileInfo(path);
            writer.WriteEntry(path, name);
            entries++;
            if (info.LinkTarget is null && !info.Attributes.HasFlag(FileAttributes.Directory)) bytes += info.Length;
        }
        var root = new FileInfo(hostPath);
        if (root.LinkTarget is null && Directory.Exists(hostPath))
        {
            Add(hostPath, Staged);
            foreach (string path in Directory.EnumerateFileSystemEntries(hostPath, "*", new EnumerationOptions
            {
                RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false,
            }))
            {
                string rel = Path.GetRelativePath(hostPath, path);
                Add(path, $"{Staged}/{rel}");
            }
        }
        else
        {
            Add(hostPath, Staged);
        }
        return (entries, bytes);
    }

    /// <summary>
    /// Extracts an archive whose top-level entry is <paramref name="rootName"/> to <paramref name="destination"/>:
    /// into it under <paramref name="rootName"/> when it is an existing directory, else as that path.
    /// </summary>
    public static (string Target, int Entries, long Bytes) ExtractArchive(Stream input, string rootName, string destination)
    {
        string dest = Path.GetFullPath(destination);
        string target = Directory.Exists(dest) ? Path.Combine(dest, rootName) : dest;
        string parent = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(parent))
            throw new WorkspaceCopyException($"no such directory: {parent}", "create the destination directory first");
        int entries = 0;
        long bytes = 0;
        var dirModes = new List<(string Path, UnixFileMode Mode)>();
        using var reader = new TarReader(input);
        while (reader.GetNextEntry() is { } entry)
        {
            string name = entry.Name.TrimEnd('/');
            string rel;
            if (name == rootName) rel = "";
            else if (name.StartsWith(rootName + "/", StringComparison.Ordinal)) rel = name[(rootName.Length + 1)..];
            else throw new WorkspaceCopyException($"unexpected entry '{entry.Name}' in the archive from the guest");
            if (rel.Split('/').Any(p => p == "..") || rel.StartsWith('/'))
                throw new WorkspaceCopyException($"refusing archive entry '{entry.Name}' that escapes the destination");
            string path = rel.Length == 0 ? target : Path.Combine(target, rel);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    if (File.Exists(path) || IsLink(path)) File.Delete(path);
                    Directory.CreateDirectory(path);
                    dirModes.Add((path, (UnixFileMode)entry.Mode));
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    if (IsLink(path)) File.Delete(path);
                    entry.ExtractToFile(path, overwrite: true);
                    File.SetUnixFileMode(path, (UnixFileMode)entry.Mode);
                    bytes += entry.Length;
                    break;
                case TarEntryType.SymbolicLink:
                    if (File.Exists(path) || IsLink(path)) File.Delete(path);
                    File.CreateSymbolicLink(path, entry.LinkName);
                    break;
                case TarEntryType.HardLink:
                    string linkRel = entry.LinkName.TrimEnd('/');
                    string source = linkRel == rootName ? target : Path.Combine(target, linkRel.StartsWith(rootName + "/", StringComparison.Ordinal) ? linkRel[(rootName.Length + 1)..] : linkRel);
                    if (File.Exists(path)) File.Delete(path);
                    File.Copy(source, path);
                    break;
                default:
                    continue; // devices, fifos: not copied
            }
            entries++;
        }
        if (entries == 0) throw new WorkspaceCopyException("the guest sent an empty archive");
        foreach (var (path, mode) in Enumerable.Reverse(dirModes)) File.SetUnixFileMode(path, mode);
        return (target, entries, bytes);
    }

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;
}
