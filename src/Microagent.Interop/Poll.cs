using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>poll(2) (include/uapi/asm-generic/poll.h).</summary>
public static unsafe partial class Poll
{
    /// <summary>POLLIN.</summary>
    public const short POLLIN = 0x1;
    /// <summary>POLLERR.</summary>
    public const short POLLERR = 0x8;
    /// <summary>POLLHUP.</summary>
    public const short POLLHUP = 0x10;

    /// <summary>struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        /// <summary>Descriptor (negative: ignored).</summary>
        public int Fd;
        /// <summary>Requested events.</summary>
        public short Events;
        /// <summary>Returned events.</summary>
        public short Revents;
    }

    [LibraryImport(Libc.Name, EntryPoint = "poll", SetLastError = true)]
    private static partial int PollRaw(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>Waits for events; returns the number of ready entries (0 on timeout or EINTR).</summary>
    public static int Wait(Span<PollFd> fds, int timeoutMs)
    {
        fixed (PollFd* p = fds)
        {
            int r = PollRaw(p, (nuint)fds.Length, timeoutMs);
            if (r >= 0) return r;
            int errno = Libc.LastErrno;
            if (errno == Libc.Errno.EINTR) return 0;
            throw new SyscallException("poll", errno);
        }
    }

    /// <summary>Blocks until <paramref name="fd"/> is readable, hung up or in error (timeout -1 = forever); retries on EINTR. Returns the revents.</summary>
    public static short WaitReadable(int fd, int timeoutMs = -1)
    {
        PollFd p = new() { Fd = fd, Events = POLLIN };
        while (true)
        {
            int n = PollRaw(&p, 1, timeoutMs);
            if (n >= 0) return p.Revents;
            int errno = Libc.LastErrno;
            if (errno != Libc.Errno.EINTR) throw new SyscallException("poll", errno);
        }
    }
}
