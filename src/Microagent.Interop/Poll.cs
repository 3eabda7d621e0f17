using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>poll(2) on a single descriptor.</summary>
public static unsafe partial class Poll
{
    /// <summary>POLLIN.</summary>
    public const short POLLIN = 0x1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Libc.Name, EntryPoint = "poll", SetLastError = true)]
    private static partial int PollRaw(PollFd* fds, nuint count, int timeout);

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
