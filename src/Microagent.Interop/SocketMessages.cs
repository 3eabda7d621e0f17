using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// recvmsg(2)/sendmsg(2) on stream sockets with SCM_RIGHTS ancillary data (unix(7), cmsg(3)).
/// Layouts are Linux x86_64 (<c>struct msghdr</c>, <c>struct cmsghdr</c>, <c>struct iovec</c>).
/// </summary>
internal static unsafe partial class SocketMessages
{
    /// <summary>Most descriptors one message may carry (vhost-user: VHOST_MEMORY_BASELINE_NREGIONS).</summary>
    public const int MaxFds = 8;

    private const int SOL_SOCKET = 1;
    private const int SCM_RIGHTS = 1;
    private const int MSG_CTRUNC = 0x8;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int MSG_CMSG_CLOEXEC = 0x40000000;
    private const int CmsgHeaderSize = 16; // CMSG_LEN(0): size_t len, int level, int type
    private const int ControlSize = CmsgHeaderSize + MaxFds * sizeof(int); // CMSG_SPACE(8 * sizeof(int)), already 8-aligned

    /// <summary>Shutdown mode for <see cref="Shutdown"/>: SHUT_RD.</summary>
    public const int SHUT_RD = 0;
    /// <summary>Shutdown mode for <see cref="Shutdown"/>: SHUT_WR.</summary>
    public const int SHUT_WR = 1;
    /// <summary>Shutdown mode for <see cref="Shutdown"/>: SHUT_RDWR.</summary>
    public const int SHUT_RDWR = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport(Libc.Name, EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint RecvMsgRaw(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsgRaw(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "shutdown", SetLastError = true)]
    private static partial int ShutdownRaw(int fd, int how);

    /// <summary>
    /// Receives up to <paramref name="buffer"/>.Length bytes and any SCM_RIGHTS descriptors sent with them
    /// (opened close-on-exec), which are appended to <paramref name="fds"/> as owned handles. Returns the byte count
    /// (0 at end of stream). When <paramref name="fds"/> is null, or the peer sent more than <see cref="MaxFds"/>,
    /// the extra descriptors are closed (by us or by the kernel) and <paramref name="truncated"/> is true.
    /// </summary>
    public static int Receive(SafeFileDescriptor socket, Span<byte> buffer, List<SafeFileDescriptor>? fds, out bool truncated)
    {
        using var lease = new FdLease(socket);
        byte* control = stackalloc byte[ControlSize];
        fixed (byte* p = buffer)
        {
            while (true)
            {
                new Span<byte>(control, ControlSize).Clear();
                IoVec iov = new() { Base = p, Length = (nuint)buffer.Length };
                MsgHdr msg = new() { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSize };
                nint n = RecvMsgRaw(lease.Fd, &msg, MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    int errno = Libc.LastErrno;
                    if (errno == Errno.EINTR) continue;
                    throw new SyscallException("recvmsg", errno);
                }
                truncated = (msg.Flags & MSG_CTRUNC) != 0;
                if (msg.ControlLength >= CmsgHeaderSize)
                {
                    long cmsgLen = *(long*)control;
                    int level = *(int*)(control + 8);
                    int type = *(int*)(control + 12);
                    if (level == SOL_SOCKET && type == SCM_RIGHTS && cmsgLen >= CmsgHeaderSize && cmsgLen <= ControlSize)
                    {
                        int count = (int)((cmsgLen - CmsgHeaderSize) / sizeof(int));
                        int* received = (int*)(control + CmsgHeaderSize);
                        for (int i = 0; i < count; i++)
                        {
                            if (fds is not null) fds.Add(new SafeFileDescriptor(received[i]));
                            else { FileDescriptors.CloseRaw(received[i]); truncated = true; }
                        }
                    }
                }
                return (int)n;
            }
        }
    }

    /// <summary>Sends the whole buffer without descriptors and without raising SIGPIPE; retries on EINTR and short writes.</summary>
    public static void SendAll(SafeFileDescriptor socket, ReadOnlySpan<byte> buffer)
    {
        using var lease = new FdLease(socket);
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                IoVec iov = new() { Base = p + done, Length = (nuint)(buffer.Length - done) };
                MsgHdr msg = new() { Iov = &iov, IovLength = 1 };
                nint n = SendMsgRaw(lease.Fd, &msg, MSG_NOSIGNAL);
                if (n >= 0) { done += (int)n; continue; }
                int errno = Libc.LastErrno;
                if (errno != Errno.EINTR) throw new SyscallException("sendmsg", errno);
            }
        }
    }

    /// <summary>Sends bytes with descriptors attached as SCM_RIGHTS (used by tests to play the vhost-user front-end); the caller keeps its handles.</summary>
    public static void SendWithFds(SafeFileDescriptor socket, ReadOnlySpan<byte> buffer, ReadOnlySpan<SafeFileDescriptor> fds)
    {
        if (fds.Length > MaxFds) throw new ArgumentException("too many descriptors", nameof(fds));
        var added = new bool[fds.Length];
        try
        {
            byte* control = stackalloc byte[ControlSize];
            new Span<byte>(control, ControlSize).Clear();
            *(long*)control = CmsgHeaderSize + fds.Length * sizeof(int);
            *(int*)(control + 8) = SOL_SOCKET;
            *(int*)(control + 12) = SCM_RIGHTS;
            for (int i = 0; i < fds.Length; i++)
            {
                fds[i].DangerousAddRef(ref added[i]);
                ((int*)(control + CmsgHeaderSize))[i] = (int)fds[i].DangerousGetHandle();
            }
            using var lease = new FdLease(socket);
            fixed (byte* p = buffer)
            {
                IoVec iov = new() { Base = p, Length = (nuint)buffer.Length };
                MsgHdr msg = new()
                {
                    Iov = &iov, IovLength = 1,
                    Control = fds.Length > 0 ? control : null,
                    ControlLength = fds.Length > 0 ? (nuint)(CmsgHeaderSize + ((fds.Length * sizeof(int) + 7) & ~7)) : 0,
                };
                while (true)
                {
                    nint n = SendMsgRaw(lease.Fd, &msg, MSG_NOSIGNAL);
                    if (n == buffer.Length) return;
                    if (n >= 0) throw new IOException("sendmsg: short write with descriptors");
                    int errno = Libc.LastErrno;
                    if (errno != Errno.EINTR) throw new SyscallException("sendmsg", errno);
                }
            }
        }
        finally
        {
            for (int i = 0; i < fds.Length; i++) if (added[i]) fds[i].DangerousRelease();
        }
    }

    /// <summary>shutdown(2) (wakes a thread blocked in recvmsg or accept on it); errors (e.g. ENOTCONN, a closed handle) are returned as errno, 0 on success.</summary>
    public static int Shutdown(SafeFileDescriptor socket, int how)
    {
        try
        {
            using var lease = new FdLease(socket);
            return ShutdownRaw(lease.Fd, how) == 0 ? 0 : Libc.LastErrno;
        }
        catch (ObjectDisposedException) { return Errno.EBADF; }
    }
}
