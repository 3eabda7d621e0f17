using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// lchown(2), link(2) and utimensat(2) with AT_SYMLINK_NOFOLLOW: the file-metadata calls that
/// .NET has no API for. None of them follows a symbolic link in the final component
/// (link(2) does not dereference <c>oldpath</c> on Linux).
/// </summary>
internal static unsafe partial class Ownership
{
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;

    [LibraryImport(Libc.Name, EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LchownRaw(string path, uint owner, uint group);

    [LibraryImport(Libc.Name, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkRaw(string oldPath, string newPath);

    [LibraryImport(Libc.Name, EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UtimensatRaw(int dirfd, string path, Timespec* times, int flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>Sets owner and group of <paramref name="path"/> itself (a symlink is not followed). Returns 0 or the errno.</summary>
    public static int TryLchown(string path, int uid, int gid)
        => LchownRaw(path, (uint)uid, (uint)gid) == 0 ? 0 : Libc.LastErrno;

    /// <summary>Creates the hard link <paramref name="newPath"/> to <paramref name="oldPath"/>; throws <see cref="SyscallException"/>.</summary>
    public static void Link(string oldPath, string newPath) => Libc.Check(LinkRaw(oldPath, newPath), "link");

    /// <summary>Sets access and modification time of <paramref name="path"/> itself (a symlink is not followed).</summary>
    public static void SetTimesNoFollow(string path, DateTimeOffset mtime)
    {
        long ticks = mtime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var t = new Timespec { Seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rem), Nanoseconds = rem * 100 };
        if (t.Nanoseconds < 0) { t.Seconds--; t.Nanoseconds += 1_000_000_000; }
        Timespec* times = stackalloc Timespec[2];
        times[0] = t;
        times[1] = t;
        Libc.Check(UtimensatRaw(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), "utimensat");
    }
}
