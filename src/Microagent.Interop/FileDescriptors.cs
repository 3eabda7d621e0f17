using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>read(2), write(2), close(2), pipe2(2) on raw descriptors.</summary>
public static unsafe partial class FileDescriptors
{
    /// <summary>O_CLOEXEC for pipe2/open flags.</summary>
    public const int O_CLOEXEC = 0x80000;
    /// <summary>O_NONBLOCK for pipe2/open flags.</summary>
    public const int O_NONBLOCK = 0x800;

    [LibraryImport(Libc.Name, EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(int fd, byte* buf, nuint count);

    [LibraryImport(Libc.Name, EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, byte* buf, nuint count);

    [LibraryImport(Libc.Name, EntryPoint = "close", SetLastError = true)]
    private static partial int CloseRaw(int fd);

    [LibraryImport(Libc.Name, EntryPoint = "pipe2", SetLastError = true)]
    private static partial int Pipe2Raw(int* fds, int flags);

    /// <summary>Reads up to buffer.Length bytes; retries on EINTR. Returns 0 at end of file.</summary>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = ReadRaw(fd, p, (nuint)buffer.Length);
                if (n >= 0) return (int)n;
                int errno = Libc.LastErrno;
                if (errno != Libc.Errno.EINTR) throw new SyscallException("read", errno);
            }
        }
    }

    /// <summary>Writes the whole buffer; retries on EINTR and short writes.</summary>
    public static void WriteAll(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint n = WriteRaw(fd, p + done, (nuint)(buffer.Length - done));
                if (n >= 0) { done += (int)n; continue; }
                int errno = Libc.LastErrno;
                if (errno != Libc.Errno.EINTR) throw new SyscallException("write", errno);
            }
        }
    }

    /// <summary>Closes a descriptor, ignoring errors (the descriptor is gone either way on Linux).</summary>
    public static void Close(int fd)
    {
        if (fd >= 0) CloseRaw(fd);
    }

    /// <summary>Creates a pipe; returns (read end, write end).</summary>
    public static (int Read, int Write) Pipe(int flags = O_CLOEXEC)
    {
        int* fds = stackalloc int[2];
        Libc.Check(Pipe2Raw(fds, flags), "pipe2");
        return (fds[0], fds[1]);
    }
}
