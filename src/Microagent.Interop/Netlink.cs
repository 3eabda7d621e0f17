using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// AF_NETLINK datagram sockets (netlink(7), include/uapi/linux/netlink.h): open one for a protocol, send a whole buffer of
/// messages to the kernel (port id 0), receive replies with a timeout. Message encoding lives with its caller
/// (Microagent.Guest/Network/Netlink*.cs); only the descriptors are here.
/// </summary>
internal static unsafe partial class Netlink
{
    /// <summary>AF_NETLINK (include/linux/socket.h).</summary>
    public const int AF_NETLINK = 16;
    /// <summary>NETLINK_ROUTE: links, addresses, routes (rtnetlink(7)).</summary>
    public const int NETLINK_ROUTE = 0;
    /// <summary>NETLINK_NETFILTER: nfnetlink, nf_tables among its subsystems.</summary>
    public const int NETLINK_NETFILTER = 12;

    private const int SOCK_RAW = 3;
    private const int SOL_SOCKET = 1;
    private const int SO_RCVTIMEO = 20;

    [LibraryImport(Libc.Name, EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketRaw(int domain, int type, int protocol);

    [LibraryImport(Libc.Name, EntryPoint = "send", SetLastError = true)]
    private static partial nint SendRaw(int fd, byte* buf, nuint len, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "recv", SetLastError = true)]
    private static partial nint RecvRaw(int fd, byte* buf, nuint len, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOptRaw(int fd, int level, int name, void* value, uint len);

    /// <summary>A close-on-exec netlink socket of <paramref name="protocol"/>; receives time out after <paramref name="receiveTimeoutMs"/>.</summary>
    public static SafeFileDescriptor Open(int protocol, int receiveTimeoutMs = 5000)
    {
        var fd = new SafeFileDescriptor((int)Libc.Check(SocketRaw(AF_NETLINK, SOCK_RAW | Sockets.SOCK_CLOEXEC, protocol), "socket(netlink)"));
        long* tv = stackalloc long[2] { receiveTimeoutMs / 1000, receiveTimeoutMs % 1000 * 1000 }; // struct timeval
        if (SetSockOptRaw(fd.DangerousFd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) != 0)
        {
            int errno = Libc.LastErrno;
            fd.Dispose();
            throw new SyscallException("setsockopt(SO_RCVTIMEO)", errno);
        }
        return fd;
    }

    /// <summary>Sends <paramref name="messages"/> (one or more netlink messages) to the kernel in one datagram.</summary>
    public static void Send(SafeFileDescriptor fd, ReadOnlySpan<byte> messages)
    {
        using var lease = new FdLease(fd);
        fixed (byte* p = messages)
        {
            while (true)
            {
                nint n = SendRaw(lease.Fd, p, (nuint)messages.Length, 0);
                if (n == messages.Length) return;
                int errno = n < 0 ? Libc.LastErrno : Errno.EINVAL;
                if (errno != Errno.EINTR) throw new SyscallException("send(netlink)", errno);
            }
        }
    }

    /// <summary>Receives one datagram (one or more messages); returns its length. A timeout is an <see cref="Errno.EAGAIN"/> error.</summary>
    public static int Receive(SafeFileDescriptor fd, Span<byte> buffer)
    {
        using var lease = new FdLease(fd);
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = RecvRaw(lease.Fd, p, (nuint)buffer.Length, 0);
                if (n >= 0) return (int)n;
                int errno = Libc.LastErrno;
                if (errno != Errno.EINTR) throw new SyscallException("recv(netlink)", errno);
            }
        }
    }
}
