using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>poll(2) (include/uapi/asm-generic/poll.h).</summary>
internal static unsafe partial class Poll
{
    /// <summary>POLLIN.</summary>
    public const short POLLIN = 0x1;
    /// <summary>POLLERR.</summary>
    public const short POLLERR = 0x8;
    /// <summary>POLLHUP.</summary>
    public const short POLLHUP = 0x10;

    /// <summary>Most descriptors one <see cref="WaitReadable(ReadOnlySpan{SafeFileDescriptor?}, Span{short}, int)"/> call watches.</summary>
    public const int MaxDescriptors = 8;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Libc.Name, EntryPoint = "poll", SetLastError = true)]
    private static partial int PollRaw(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>
    /// Waits until one of <paramref name="fds"/> is readable, hung up or in error; a null entry is ignored (its revents
    /// stay 0). Writes each entry's revents to <paramref name="revents"/> and returns the number of ready entries
    /// (0 on timeout or EINTR).
    /// </summary>
    public static int WaitReadable(ReadOnlySpan<SafeFileDescriptor?> fds, Span<short> revents, int timeoutMs)
    {
        if (fds.Length > MaxDescriptors || revents.Length < fds.Length) throw new ArgumentException("too many descriptors or too few revents", nameof(fds));
        PollFd* p = stackalloc PollFd[fds.Length];
        var added = new bool[fds.Length];
        try
        {
            for (int i = 0; i < fds.Length; i++)
            {
                p[i] = new PollFd { Fd = -1, Events = POLLIN };
                if (fds[i] is not { } h) continue;
                h.DangerousAddRef(ref added[i]);
                p[i].Fd = (int)h.DangerousGetHandle();
            }
            int r = PollRaw(p, (nuint)fds.Length, timeoutMs);
            int errno = r < 0 ? Libc.LastErrno : 0;
            for (int i = 0; i < fds.Length; i++) revents[i] = r > 0 ? p[i].Revents : (short)0;
            if (r >= 0) return r;
            if (errno == Errno.EINTR) return 0;
            throw new SyscallException("poll", errno);
        }
        finally
        {
            for (int i = 0; i < fds.Length; i++) if (added[i]) fds[i]!.DangerousRelease();
        }
    }

    /// <summary>Blocks until <paramref name="fd"/> is readable, hung up or in error (timeout -1 = forever); retries on EINTR. Returns the revents.</summary>
    public static short WaitReadable(SafeFileDescriptor fd, int timeoutMs = -1)
    {
        using var lease = new FdLease(fd);
        PollFd p = new() { Fd = lease.Fd, Events = POLLIN };
        while (true)
        {
            int n = PollRaw(&p, 1, timeoutMs);
            if (n >= 0) return p.Revents;
            int errno = Libc.LastErrno;
            if (errno != Errno.EINTR) throw new SyscallException("poll", errno);
        }
    }
}
