using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>mount(2), umount2(2), chroot(2), chdir(2), sync(2) (include/uapi/linux/mount.h).</summary>
internal static partial class Mount
{
    /// <summary>MS_RDONLY.</summary>
    public const ulong MS_RDONLY = 1;
    /// <summary>MS_NOSUID.</summary>
    public const ulong MS_NOSUID = 2;
    /// <summary>MS_NODEV.</summary>
    public const ulong MS_NODEV = 4;
    /// <summary>MS_NOEXEC.</summary>
    public const ulong MS_NOEXEC = 8;
    /// <summary>MS_REMOUNT.</summary>
    public const ulong MS_REMOUNT = 32;
    /// <summary>MS_MOVE.</summary>
    public const ulong MS_MOVE = 8192;
    /// <summary>MNT_DETACH for umount2.</summary>
    public const int MNT_DETACH = 2;

    [LibraryImport(Libc.Name, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MountRaw(string? source, string target, string? fstype, ulong flags, string? data);

    [LibraryImport(Libc.Name, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2Raw(string target, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "chroot", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChrootRaw(string path);

    [LibraryImport(Libc.Name, EntryPoint = "chdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChdirRaw(string path);

    [LibraryImport(Libc.Name, EntryPoint = "sync")]
    private static partial void SyncRaw();

    /// <summary>mount(2); throws <see cref="SyscallException"/> on failure.</summary>
    public static void Do(string? source, string target, string? fstype, ulong flags = 0, string? data = null) =>
        Libc.Check(MountRaw(source, target, fstype, flags, data), $"mount {target}");

    /// <summary>umount2(2); returns errno or 0.</summary>
    public static int Unmount(string target, int flags = 0) => Umount2Raw(target, flags) < 0 ? Libc.LastErrno : 0;

    /// <summary>chroot(2).</summary>
    public static void Chroot(string path) => Libc.Check(ChrootRaw(path), "chroot");

    /// <summary>chdir(2) of the whole process.</summary>
    public static void Chdir(string path) => Libc.Check(ChdirRaw(path), "chdir");

    /// <summary>sync(2).</summary>
    public static void Sync() => SyncRaw();
}
