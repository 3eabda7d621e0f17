using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// Mixing entropy into the kernel's RNG and crediting it: the <c>RNDADDENTROPY</c> ioctl on <c>/dev/urandom</c>
/// (include/uapi/linux/random.h: <c>_IOW('R', 0x03, int[2])</c> taking <c>struct rand_pool_info { int entropy_count;
/// int buf_size; __u32 buf[]; }</c>; needs CAP_SYS_ADMIN), then <c>RNDRESEEDCRNG</c> (<c>_IO('R', 0x07)</c>) so the output
/// generator is reseeded from it at once, not at its next scheduled reseed. A restored or forked guest calls it with host-supplied bytes so
/// that clones of one saved VM do not produce the same random stream.
/// </summary>
internal static unsafe partial class KernelRandom
{
    private const uint RNDADDENTROPY = 0x40085203;
    private const uint RNDRESEEDCRNG = 0x5207; // _IO('R', 0x07)
    private const int O_WRONLY = 1, O_CLOEXEC = 0x80000;

    [LibraryImport(Libc.Name, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, byte* arg);

    [LibraryImport(Libc.Name, EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    /// <summary>Mixes <paramref name="seed"/> into the kernel RNG, credited as <c>8 × length</c> bits, and reseeds its output generator; throws <see cref="SyscallException"/>.</summary>
    public static void AddEntropy(ReadOnlySpan<byte> seed)
    {
        if (seed.Length is 0 or > 4096) throw new ArgumentOutOfRangeException(nameof(seed), "1-4096 bytes");
        byte[] info = new byte[8 + seed.Length];
        BinaryPrimitives.WriteInt32LittleEndian(info, seed.Length * 8);
        BinaryPrimitives.WriteInt32LittleEndian(info.AsSpan(4), seed.Length);
        seed.CopyTo(info.AsSpan(8));
        int fd = Open("/dev/urandom", O_WRONLY | O_CLOEXEC);
        if (fd < 0) throw new SyscallException("open /dev/urandom", Libc.LastErrno);
        try
        {
            fixed (byte* p = info) Libc.Check(Ioctl(fd, RNDADDENTROPY, p), "ioctl RNDADDENTROPY");
            // The input pool alone feeds the output generator only at its next scheduled reseed: force it now.
            Libc.Check(Ioctl(fd, RNDRESEEDCRNG, null), "ioctl RNDRESEEDCRNG");
        }
        finally { Close(fd); }
    }
}
