using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>eventfd(2): create, signal (write a u64) and wait (read the u64 counter).</summary>
internal static partial class EventFd
{
    /// <summary>EFD_CLOEXEC.</summary>
    public const int EFD_CLOEXEC = 0x80000;

    [LibraryImport(Libc.Name, EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdRaw(uint initval, int flags);

    /// <summary>Creates an eventfd with counter 0.</summary>
    public static SafeFileDescriptor Create() => new((int)Libc.Check(EventFdRaw(0, EFD_CLOEXEC), "eventfd"));

    /// <summary>Adds 1 to the counter. Returns false instead of throwing when the write fails (EAGAIN on a saturated counter, a closed handle...).</summary>
    public static bool TrySignal(SafeFileDescriptor fd)
    {
        Span<byte> one = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(one, 1);
        try { FileDescriptors.WriteAll(fd, one); return true; }
        catch (SyscallException) { return false; }
        catch (ObjectDisposedException) { return false; }
    }

    /// <summary>
    /// Blocks until the counter is non-zero, then returns and resets it; works on blocking and EFD_NONBLOCK
    /// descriptors alike (QEMU's are non-blocking). Throws <see cref="SyscallException"/> on error.
    /// </summary>
    public static ulong Wait(SafeFileDescriptor fd)
    {
        Span<byte> value = stackalloc byte[8];
        while (true)
        {
            int n;
            try { n = FileDescriptors.Read(fd, value); }
            catch (SyscallException e) when (e.Errno == Errno.EAGAIN)
            {
                Poll.WaitReadable(fd);
                continue;
            }
            if (n != 8) throw new IOException($"eventfd read returned {n} bytes");
            return BinaryPrimitives.ReadUInt64LittleEndian(value);
        }
    }
}
