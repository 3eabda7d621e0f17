using Microagent.Errors;
using Microagent.Images;
using Microagent.Interop;

namespace Microagent.Access;

/// <summary>
/// Which host paths a caller may read or write: only what resolves, after every symlink, inside one of the
/// <see cref="Roots"/> (docs/ARCHITECTURE.md "MCP server: a trust boundary"). The decision is made on a pinned
/// <c>O_PATH</c> descriptor, not on a name: the path is opened first, the kernel names what was opened
/// (<c>/proc/self/fd/N</c>), that name is compared with the roots, and the read or write then goes through the same
/// descriptor, so a symlink swapped in after the check cannot redirect it. A denial is <see cref="ErrorKind.PolicyDenied"/>,
/// names the roots and carries <see cref="Remediation"/>.
/// </summary>
public sealed class HostAccess
{
    private HostAccess(IReadOnlyList<string> roots, string workingDirectory, string remediation)
    {
        Roots = roots;
        WorkingDirectory = workingDirectory;
        Remediation = remediation;
    }

    /// <summary>What relative host paths are resolved against (the server's working directory).</summary>
    public string WorkingDirectory { get; }

    /// <summary>The roots, as real paths (symlinks resolved when the access was made).</summary>
    public IReadOnlyList<string> Roots { get; }

    /// <summary>What a denied caller is told to do (for the MCP server: which launch flag adds a root).</summary>
    public string Remediation { get; }

    /// <summary>
    /// Access limited to <paramref name="roots"/> (relative ones against <paramref name="workingDirectory"/>); each must be an
    /// existing directory and is pinned to its real path now.
    /// </summary>
    public static HostAccess Create(IEnumerable<string> roots, string workingDirectory, string remediation)
    {
        var real = new List<string>();
        foreach (string root in roots)
        {
            if (string.IsNullOrWhiteSpace(root) || root.Contains('\0')) throw MicroagentException.Invalid("a host root is empty", "name a directory");
            string abs = Absolute(root, workingDirectory);
            var (fd, errno) = PathHandles.TryOpenPath(abs, directory: true);
            using (fd)
            {
                string? path = fd is null ? null : PathHandles.RealPath(fd);
                if (path is null)
                    throw MicroagentException.Invalid($"host root {root} is not a directory ({Libc.Describe(errno == 0 ? Errno.ENOENT : errno)})",
                        "name an existing directory");
                if (!real.Contains(path)) real.Add(path);
            }
        }
        if (real.Count == 0) throw MicroagentException.Invalid("no host root given", "name at least one directory");
        return new HostAccess(real, Path.GetFullPath(workingDirectory), remediation);
    }

    /// <summary>Whether the real path <paramref name="path"/> is one of the roots or below one.</summary>
    public bool IsInside(string path) =>
        Roots.Any(r => path == r || r == "/" || path.StartsWith(r + "/", StringComparison.Ordinal));

    /// <summary>
    /// Pins an existing file or directory to read: <paramref name="path"/> is resolved following every symlink and what it
    /// leads to must be inside a root. <paramref name="argument"/> names the input in messages.
    /// </summary>
    public HostPath OpenSource(string path, string argument = "host_path")
    {
        string abs = Absolute(Check(path, argument), WorkingDirectory);
        var (fd, errno) = PathHandles.TryOpenPath(abs, directory: false);
        if (fd is null)
        {
            if (errno == Errno.ELOOP) throw Denied(path, argument, MagicLink);
            if (!LexicallyInside(abs)) throw Denied(path, argument);
            throw errno is Errno.ENOENT or Errno.ENOTDIR
                ? MicroagentException.NotFound($"no such file or directory: {path}") : new MicroagentException(ErrorKind.Permanent,
                    $"cannot open {path}: {Libc.Describe(errno)}", "check the path and its permissions") { Field = argument };
        }
        return Pin(fd, path, argument);
    }

    /// <summary>
    /// Pins where a copy writes: when <paramref name="path"/> resolves to a directory inside a root, the new entry is
    /// <paramref name="nameInDirectory"/> in it; otherwise it is the last component of <paramref name="path"/> in its parent
    /// directory, which must resolve inside a root. A final component that is a symlink leading outside the roots is
    /// denied; an existing entry is refused with <see cref="ErrorKind.Conflict"/> unless <paramref name="overwrite"/>
    /// (and even then a symlink there is replaced, never written through).
    /// </summary>
    public HostDestination OpenDestination(string path, string nameInDirectory, bool overwrite, string argument = "host_path")
    {
        string abs = Absolute(Check(path, argument), WorkingDirectory);
        var (dir, dirErrno) = PathHandles.TryOpenPath(abs, directory: true);
        if (dirErrno == Errno.ELOOP) throw Denied(path, argument, MagicLink);
        HostPath parent;
        string name;
        if (dir is not null)
        {
            parent = Pin(dir, path, argument);
            name = nameInDirectory;
        }
        else
        {
            string trimmed = abs.Length > 1 ? abs.TrimEnd('/') : abs;
            name = Path.GetFileName(trimmed);
            if (name is "" or "." or "..")
                throw new MicroagentException(ErrorKind.Invalid, $"{path} does not name a file to write") { Field = argument };
            string parentPath = trimmed[..^name.Length];
            var (pfd, errno) = PathHandles.TryOpenPath(parentPath.Length == 0 ? "/" : parentPath, directory: true);
            if (pfd is null)
            {
                if (errno == Errno.ELOOP) throw Denied(path, argument, MagicLink);
                if (!LexicallyInside(parentPath)) throw Denied(path, argument);
                throw MicroagentException.NotFound($"no such directory: {Path.GetDirectoryName(trimmed)} ({Libc.Describe(errno)})",
                    "create the destination directory first");
            }
            parent = Pin(pfd, path, argument);
        }
        try
        {
            var existing = PathHandles.StatAt(parent.Descriptor, name);
            if (existing is { IsSymbolicLink: true })
            {
                var (link, linkErrno) = PathHandles.TryOpenPathAt(parent.Descriptor, name, follow: true);
                using (link)
                {
                    if (linkErrno == Errno.ELOOP) throw Denied(path, argument, MagicLink);
                    if (link is not null && PathHandles.RealPath(link) is { } target && !IsInside(target))
                        throw Denied(path, argument, "is a symbolic link that leads outside them");
                }
            }
            if (existing is not null && !overwrite)
                throw new MicroagentException(ErrorKind.Conflict, $"{Path.Combine(parent.RealPath, name)} already exists",
                    "pass overwrite: true to replace it, or choose another host_path") { Field = "overwrite" };
            return new HostDestination(parent, name, existing is not null);
        }
        catch
        {
            parent.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The host path an image reference reads (<c>oci:PATH[:TAG]</c>, <c>docker-archive:PATH</c>), or null for a registry
    /// reference or the embedded default image (which read no caller-named host path).
    /// </summary>
    public static string? ImageSourcePath(string? imageRef)
    {
        if (imageRef is null || !(imageRef.StartsWith("oci:", StringComparison.Ordinal) || imageRef.StartsWith("docker-archive:", StringComparison.Ordinal)))
            return null;
        return ImageSource.Parse(imageRef) switch
        {
            ImageSource.Layout l => l.Path,
            ImageSource.DockerArchive a => a.Path,
            _ => null,
        };
    }

    /// <summary>
    /// Checks that the host path an image reference reads (see <see cref="ImageSourcePath"/>) resolves inside a root; returns
    /// its real path, or null when the reference reads no caller-named host path. The image store then reads it by name (a
    /// layout is many files), so this check is made at call time, not through a pinned descriptor.
    /// </summary>
    public string? CheckImageSource(string? imageRef, string argument = "image")
    {
        if (ImageSourcePath(imageRef) is not { } path) return null;
        using var pinned = OpenSource(path, argument);
        return pinned.RealPath;
    }

    private const string MagicLink = "goes through a /proc magic link or a symlink loop";

    private HostPath Pin(SafeFileDescriptor fd, string given, string argument)
    {
        string? real = PathHandles.RealPath(fd);
        if (real is null || !IsInside(real))
        {
            fd.Dispose();
            throw Denied(given, argument, real is null ? "cannot be named" : $"resolves to {real}");
        }
        return new HostPath(fd, given, real, PathHandles.Stat(fd));
    }

    /// <summary>For a path that does not exist: whether its spelling (without resolving anything) is under a root, so a missing path outside them is denied, not reported missing.</summary>
    private bool LexicallyInside(string abs) => IsInside(Path.GetFullPath(abs).TrimEnd('/') is { Length: > 0 } p ? p : "/");

    private MicroagentException Denied(string path, string argument, string? why = null) =>
        new(ErrorKind.PolicyDenied,
            $"host path {path} {(why is null ? "is" : why + ", which is")} outside the allowed host roots ({string.Join(", ", Roots)})",
            Remediation) { Field = argument };

    private static string Check(string path, string argument) =>
        string.IsNullOrEmpty(path) || path.Contains('\0')
            ? throw new MicroagentException(ErrorKind.Invalid, "the host path is empty or contains NUL") { Field = argument }
            : path;

    private static string Absolute(string path, string workingDirectory) =>
        Path.IsPathRooted(path) ? path : Path.Join(workingDirectory, path);
}

/// <summary>A host file or directory pinned by an <c>O_PATH</c> descriptor: read it through <see cref="ProcPath"/> or <see cref="OpenRead"/>.</summary>
public sealed class HostPath : IDisposable
{
    internal HostPath(SafeFileDescriptor fd, string given, string realPath, FileStat stat)
    {
        Descriptor = fd;
        Given = given;
        RealPath = realPath;
        Stat = stat;
    }

    internal SafeFileDescriptor Descriptor { get; }

    /// <summary>The path as the caller gave it.</summary>
    public string Given { get; }

    /// <summary>Where it resolved (symlinks resolved), at pinning time.</summary>
    public string RealPath { get; }

    /// <summary>Type, mode, owner, size and mtime of the pinned file.</summary>
    internal FileStat Stat { get; }

    /// <summary>A path the kernel resolves to exactly the pinned inode (for a directory, append <c>/.</c> or a name).</summary>
    public string ProcPath => PathHandles.ProcPath(Descriptor);

    /// <summary>Opens the pinned regular file for reading.</summary>
    public FileStream OpenRead() => new(PathHandles.OpenForRead(Descriptor), FileAccess.Read, 1 << 16);

    /// <inheritdoc />
    public void Dispose() => Descriptor.Dispose();
}

/// <summary>Where a copy writes: entry <see cref="Name"/> in the pinned directory <see cref="Directory"/>.</summary>
/// <param name="Directory">The pinned parent directory (inside a root).</param>
/// <param name="Name">The entry to create (or replace, when the caller allowed it).</param>
/// <param name="Exists">Something was there when it was checked.</param>
public sealed record HostDestination(HostPath Directory, string Name, bool Exists) : IDisposable
{
    /// <summary>The final path reported to the caller.</summary>
    public string RealPath => Directory.RealPath == "/" ? "/" + Name : $"{Directory.RealPath}/{Name}";

    /// <summary>The path writes go through: the entry below the pinned directory's descriptor.</summary>
    public string ProcPath => $"{Directory.ProcPath}/{Name}";

    /// <inheritdoc />
    public void Dispose() => Directory.Dispose();
}
