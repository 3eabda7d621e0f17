using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// mknod(2) for device nodes and FIFOs, link(2) for hard links, lsetxattr(2) for extended attributes (including
/// <c>security.capability</c>). Neither follows a symbolic link in the final component.
/// </summary>
internal static unsafe partial class FileNodes
{
    /// <summary>File type bits (include/uapi/linux/stat.h).</summary>
    public const uint S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFBLK = 0x6000;

    [LibraryImport(Libc.Name, EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MknodRaw(string path, uint mode, ulong dev);

    [LibraryImport(Libc.Name, EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LsetxattrRaw(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkRaw(string existing, string newPath);

    /// <summary>link(2): a second name <paramref name="newPath"/> for the file <paramref name="existing"/>. Throws <see cref="SyscallException"/>.</summary>
    public static void HardLink(string existing, string newPath) => Libc.Check(LinkRaw(existing, newPath), "link");

    /// <summary>glibc's gnu_dev_makedev encoding of a device number (sys/sysmacros.h).</summary>
    public static ulong MakeDev(uint major, uint minor)
        => ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    /// <summary>Creates a device node or FIFO; <paramref name="mode"/> holds type and permission bits. Throws <see cref="SyscallException"/>.</summary>
    public static void Mknod(string path, uint mode, uint major, uint minor)
        => Libc.Check(MknodRaw(path, mode, MakeDev(major, minor)), "mknod");

    /// <summary>Sets an extended attribute on <paramref name="path"/> itself. Returns 0 or the errno.</summary>
    public static int TrySetXattr(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
            return LsetxattrRaw(path, name, p, (nuint)value.Length, 0) == 0 ? 0 : Libc.LastErrno;
    }
}
