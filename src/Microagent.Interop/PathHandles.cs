using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Microagent.Interop;

/// <summary>What statx(2) reports about one file (type and permission bits, owner, size, modification time).</summary>
/// <param name="Mode">st_mode: type (<c>S_IFMT</c>) and permission bits.</param>
/// <param name="Uid">Owner uid.</param>
/// <param name="Gid">Owner gid.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="ModifiedSeconds">Modification time, seconds since the epoch.</param>
internal readonly record struct FileStat(uint Mode, uint Uid, uint Gid, long Size, long ModifiedSeconds)
{
    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000;

    /// <summary>A directory.</summary>
    public bool IsDirectory => (Mode & S_IFMT) == S_IFDIR;
    /// <summary>A regular file.</summary>
    public bool IsRegularFile => (Mode & S_IFMT) == S_IFREG;
    /// <summary>A symbolic link (only seen when the link itself was asked about).</summary>
    public bool IsSymbolicLink => (Mode & S_IFMT) == S_IFLNK;
    /// <summary>The permission bits (including setuid, setgid and sticky).</summary>
    public uint Permissions => Mode & 0xFFF;
}

/// <summary>
/// Path descriptors: openat2(2)/openat(2) with <c>O_PATH</c> (a handle on a file or directory that pins it without reading it),
/// statx(2) on a descriptor or below one, mkdir(2) that reports <c>EEXIST</c>, and reopening a pinned file for reading
/// through <c>/proc/self/fd</c>. A path used through <see cref="ProcPath"/> resolves to exactly the pinned inode, whatever
/// was renamed or swapped for a symlink at its old name since it was opened.
/// </summary>
internal static unsafe partial class PathHandles
{
    private const int O_RDONLY = 0, O_NOCTTY = 0x100, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000,
        O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
    private const uint STATX_BASIC_STATS = 0x7ff;
    private const int StatxSize = 256;

    /// <summary>openat2(2): 437 in include/uapi/asm-generic/unistd.h, the same number on every architecture (Linux 5.6+).</summary>
    private const long SYS_openat2 = 437;
    /// <summary>RESOLVE_NO_MAGICLINKS (include/uapi/linux/openat2.h): fail with ELOOP on a /proc "magic link" anywhere in the path.</summary>
    private const ulong RESOLVE_NO_MAGICLINKS = 0x02;

    private static volatile bool s_noOpenat2;

    [LibraryImport(Libc.Name, EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAtRaw(int dirfd, string path, int flags, uint mode);

    [LibraryImport(Libc.Name, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, long dirfd, byte* path, ulong* how, long size);

    [LibraryImport(Libc.Name, EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkdirRaw(string path, uint mode);

    [LibraryImport(Libc.Name, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxRaw(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>
    /// Opens <paramref name="path"/> with <c>O_PATH</c>, following symlinks in every component (the caller checks where it
    /// landed with <see cref="RealPath"/>); <paramref name="directory"/> adds <c>O_DIRECTORY</c>. Returns the descriptor, or
    /// the errno (ENOENT, ENOTDIR, ELOOP, EACCES, ...) with a null descriptor.
    /// </summary>
    public static (SafeFileDescriptor? Fd, int Errno) TryOpenPath(string path, bool directory)
    {
        int fd = OpenPathCore(AT_FDCWD, path, O_PATH | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
        return fd < 0 ? (null, -fd) : (new SafeFileDescriptor(fd), 0);
    }

    /// <summary>
    /// openat2 with <c>RESOLVE_NO_MAGICLINKS</c>: ordinary symlinks are followed, but a <c>/proc/PID/fd/N</c>,
    /// <c>/proc/PID/root</c> or <c>/proc/PID/cwd</c> jump (which could land in another mount namespace, where a path name
    /// says nothing) fails with ELOOP. Falls back to openat when the kernel or a seccomp filter lacks openat2. Returns the
    /// descriptor or the negated errno.
    /// </summary>
    private static int OpenPathCore(int dirfd, string path, int flags)
    {
        if (!s_noOpenat2)
        {
            int n = System.Text.Encoding.UTF8.GetByteCount(path);
            byte* p = stackalloc byte[n + 1];
            System.Text.Encoding.UTF8.GetBytes(path, new Span<byte>(p, n));
            p[n] = 0;
            ulong* how = stackalloc ulong[3]; // struct open_how { u64 flags; u64 mode; u64 resolve; }
            how[0] = (ulong)flags;
            how[1] = 0;
            how[2] = RESOLVE_NO_MAGICLINKS;
            long fd = Syscall4(SYS_openat2, dirfd, p, how, 3 * sizeof(ulong));
            if (fd >= 0) return (int)fd;
            int errno = Libc.LastErrno;
            if (errno is not (Errno.ENOSYS or Errno.EPERM)) return -errno;
            s_noOpenat2 = true;
        }
        int r = OpenAtRaw(dirfd, path, flags, 0);
        return r >= 0 ? r : -Libc.LastErrno;
    }

    /// <summary>The path of a pinned descriptor that the kernel resolves to its inode: <c>/proc/self/fd/N</c>. Valid while the handle is open.</summary>
    public static string ProcPath(SafeFileDescriptor fd) => $"/proc/self/fd/{fd.DangerousFd}";

    /// <summary>
    /// Where the pinned descriptor's file is now, with every symlink resolved (readlink of <see cref="ProcPath"/>); null
    /// when the kernel cannot name it (deleted, or outside this mount namespace).
    /// </summary>
    public static string? RealPath(SafeFileDescriptor fd)
    {
        string? target = new FileInfo(ProcPath(fd)).LinkTarget;
        return target is null || !target.StartsWith('/') || target.EndsWith(" (deleted)", StringComparison.Ordinal) ? null : target;
    }

    /// <summary>statx(2) of the descriptor itself (<c>AT_EMPTY_PATH</c>; an <c>O_PATH</c> descriptor works).</summary>
    public static FileStat Stat(SafeFileDescriptor fd)
    {
        using var lease = new FdLease(fd);
        return StatCore(lease.Fd, "", AT_EMPTY_PATH) ?? throw new SyscallException("statx", Errno.ENOENT);
    }

    /// <summary>statx(2) of <paramref name="name"/> in directory <paramref name="dir"/>, not following a final symlink; null when it does not exist.</summary>
    public static FileStat? StatAt(SafeFileDescriptor dir, string name)
    {
        using var lease = new FdLease(dir);
        return StatCore(lease.Fd, name, AT_SYMLINK_NOFOLLOW);
    }

    private static FileStat? StatCore(int dirfd, string path, int flags)
    {
        byte* b = stackalloc byte[StatxSize];
        if (StatxRaw(dirfd, path, flags, STATX_BASIC_STATS, b) < 0)
        {
            int errno = Libc.LastErrno;
            return errno is Errno.ENOENT or Errno.ENOTDIR ? null : throw new SyscallException("statx", errno);
        }
        // struct statx (include/uapi/linux/stat.h; the same layout on every architecture).
        return new FileStat(Mode: *(ushort*)(b + 28), Uid: *(uint*)(b + 20), Gid: *(uint*)(b + 24), Size: *(long*)(b + 40),
            ModifiedSeconds: *(long*)(b + 112));
    }

    /// <summary>
    /// Opens the file pinned by <paramref name="pinned"/> for reading (<c>O_NONBLOCK</c>, so a FIFO swapped in never blocks;
    /// <c>O_NOCTTY</c>); the result reads exactly that inode.
    /// </summary>
    public static SafeFileHandle OpenForRead(SafeFileDescriptor pinned)
    {
        using var lease = new FdLease(pinned);
        int fd = OpenAtRaw(AT_FDCWD, $"/proc/self/fd/{lease.Fd}", O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0);
        if (fd < 0) throw new SyscallException("open", Libc.LastErrno);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Opens <paramref name="name"/> in <paramref name="dir"/> with <c>O_PATH</c>; <paramref name="follow"/> false adds <c>O_NOFOLLOW</c> (a final symlink is pinned itself).</summary>
    public static (SafeFileDescriptor? Fd, int Errno) TryOpenPathAt(SafeFileDescriptor dir, string name, bool follow)
    {
        using var lease = new FdLease(dir);
        int fd = OpenPathCore(lease.Fd, name, O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
        return fd < 0 ? (null, -fd) : (new SafeFileDescriptor(fd), 0);
    }

    /// <summary>mkdir(2): 0 when created, else the errno (<c>EEXIST</c> when anything, a symlink included, is already there).</summary>
    public static int TryMkdir(string path, uint mode) => MkdirRaw(path, mode) == 0 ? 0 : Libc.LastErrno;
}
