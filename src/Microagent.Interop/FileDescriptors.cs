using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>read(2), write(2), close(2), pipe2(2), fcntl(2) F_GETFD on <see cref="SafeFileDescriptor"/>s.</summary>
internal static unsafe partial class FileDescriptors
{
    /// <summary>O_CLOEXEC for pipe2/open flags.</summary>
    public const int O_CLOEXEC = 0x80000;
    /// <summary>O_NONBLOCK for pipe2/open flags.</summary>
    public const int O_NONBLOCK = 0x800;

    private const int F_GETFD = 1;

    [LibraryImport(Libc.Name, EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(int fd, byte* buf, nuint count);

    [LibraryImport(Libc.Name, EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, byte* buf, nuint count);

    /// <summary>close(2); only <see cref="SafeFileDescriptor.ReleaseHandle"/> and descriptors never wrapped (kernel overflow) call it.</summary>
    [LibraryImport(Libc.Name, EntryPoint = "close", SetLastError = true)]
    internal static partial int CloseRaw(int fd);

    [LibraryImport(Libc.Name, EntryPoint = "pipe2", SetLastError = true)]
    private static partial int Pipe2Raw(int* fds, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "fcntl", SetLastError = true)]
    private static partial int FcntlRaw(int fd, int cmd);

    /// <summary>Reads up to buffer.Length bytes; retries on EINTR. Returns 0 at end of file.</summary>
    public static int Read(SafeFileDescriptor fd, Span<byte> buffer)
    {
        using var lease = new FdLease(fd);
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = ReadRaw(lease.Fd, p, (nuint)buffer.Length);
                if (n >= 0) return (int)n;
                int errno = Libc.LastErrno;
                if (errno != Errno.EINTR) throw new SyscallException("read", errno);
            }
        }
    }

    /// <summary>Writes the whole buffer; retries on EINTR and short writes.</summary>
    public static void WriteAll(SafeFileDescriptor fd, ReadOnlySpan<byte> buffer)
    {
        using var lease = new FdLease(fd);
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint n = WriteRaw(lease.Fd, p + done, (nuint)(buffer.Length - done));
                if (n >= 0) { done += (int)n; continue; }
                int errno = Libc.LastErrno;
                if (errno != Errno.EINTR) throw new SyscallException("write", errno);
            }
        }
    }

    /// <summary>Creates a pipe; returns (read end, write end), both owned.</summary>
    public static (SafeFileDescriptor Read, SafeFileDescriptor Write) Pipe(int flags = O_CLOEXEC)
    {
        int* fds = stackalloc int[2];
        Libc.Check(Pipe2Raw(fds, flags), "pipe2");
        return (new SafeFileDescriptor(fds[0]), new SafeFileDescriptor(fds[1]));
    }

    /// <summary>Whether descriptor number <paramref name="fd"/> is open in this process (fcntl F_GETFD does not fail with EBADF).</summary>
    public static bool IsOpen(int fd) => fd >= 0 && (FcntlRaw(fd, F_GETFD) >= 0 || Libc.LastErrno != Errno.EBADF);
}
