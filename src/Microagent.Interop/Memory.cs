using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// A shared read/write mapping of a file descriptor (mmap(2) MAP_SHARED, munmap(2)). Callers get bounds-checked
/// spans; nothing outside this project touches the pointer. A span must not be used after <see cref="Dispose"/>.
/// </summary>
internal sealed unsafe partial class MemoryMapping : IDisposable
{
    private const int PROT_READ = 1;
    private const int PROT_WRITE = 2;
    private const int MAP_SHARED = 1;
    private static readonly nint MapFailed = -1;

    private byte* _base;

    [LibraryImport(Libc.Name, EntryPoint = "mmap", SetLastError = true)]
    private static partial nint MmapRaw(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Libc.Name, EntryPoint = "munmap", SetLastError = true)]
    private static partial int MunmapRaw(nint addr, nuint length);

    private MemoryMapping(byte* address, ulong length)
    {
        _base = address;
        Length = length;
    }

    /// <summary>Mapped length in bytes.</summary>
    public ulong Length { get; }

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="fd"/> starting at file offset 0, shared and writable.
    /// The mapping stays valid after <paramref name="fd"/> is closed.</summary>
    public static MemoryMapping MapShared(SafeFileDescriptor fd, ulong length)
    {
        if (length == 0 || length > long.MaxValue) throw new ArgumentOutOfRangeException(nameof(length));
        using var lease = new FdLease(fd);
        nint p = MmapRaw(0, (nuint)length, PROT_READ | PROT_WRITE, MAP_SHARED, lease.Fd, 0);
        if (p == MapFailed) throw new SyscallException("mmap", Libc.LastErrno);
        return new MemoryMapping((byte*)p, length);
    }

    /// <summary>The bytes [offset, offset+length); throws if the range leaves the mapping or the mapping is gone.</summary>
    public Span<byte> GetSpan(ulong offset, int length)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        if (length < 0 || offset > Length || (ulong)length > Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), "range outside the mapping");
        return new Span<byte>(_base + offset, length);
    }

    /// <summary>Unmaps the region.</summary>
    public void Dispose()
    {
        if (_base == null) return;
        MunmapRaw((nint)_base, (nuint)Length);
        _base = null;
    }
}
