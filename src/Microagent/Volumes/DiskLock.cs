using Microagent.Tools;

namespace Microagent.Volumes;

/// <summary>
/// Who has a host disk file attached (docs/ARCHITECTURE.md "Images and disks"): a lock file under <c>&lt;state&gt;/locks/</c>
/// named by the disk's real path, held by the supervisor of each workspace that attaches it for as long as the VM runs
/// (flock: released when the supervisor dies). Read-write takes it exclusively, read-only shared, so one writer excludes every
/// other user and readers share. QEMU's own image locking stands behind it.
/// </summary>
internal sealed class DiskLock : IDisposable
{
    private readonly FileStream _stream;

    private DiskLock(FileStream stream) => _stream = stream;

    /// <summary>The lock file of <paramref name="diskPath"/> (by its real path, so two spellings of one file share it).</summary>
    public static string PathFor(StatePaths paths, string diskPath)
    {
        ArgumentNullException.ThrowIfNull(paths);
        string real = RealPath(diskPath);
        return Path.Combine(paths.Root, "locks", $"disk-{Hashing.Sha256(System.Text.Encoding.UTF8.GetBytes(real))[..32]}.lock");
    }

    /// <summary>The file a path names after every symlink is followed.</summary>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        try { return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full; }
        catch (IOException) { return full; }
    }

    /// <summary>Takes the lock now (exclusive for a writer, shared for a reader); null when a conflicting holder has it.</summary>
    public static DiskLock? TryAcquire(string lockPath, bool exclusive)
    {
        StatePaths.EnsureDirectory(Path.GetDirectoryName(lockPath)!);
        try
        {
            // .NET on Unix takes flock(LOCK_EX) for FileShare.None and flock(LOCK_SH) otherwise, without blocking.
            return new DiskLock(new FileStream(lockPath, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = exclusive ? FileShare.None : FileShare.ReadWrite,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }));
        }
        catch (IOException) { return null; }
    }

    /// <summary>True when some process holds the lock (either way) right now.</summary>
    public static bool IsHeld(string lockPath)
    {
        if (!File.Exists(lockPath)) return false;
        using var probe = TryAcquire(lockPath, exclusive: true);
        return probe is null;
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
