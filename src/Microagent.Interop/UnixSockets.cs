using System.Runtime.InteropServices;
using System.Text;

namespace Microagent.Interop;

/// <summary>
/// Blocking AF_UNIX stream sockets on raw descriptors: socket(2), bind(2), listen(2), accept4(2), connect(2).
/// Used where the descriptor is read with recvmsg (SCM_RIGHTS) and must stay in blocking mode.
/// </summary>
public static unsafe partial class UnixSockets
{
    private const int AF_UNIX = 1;
    private const int SOCK_STREAM = 1;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int SunPathLength = 108;

    [LibraryImport(Libc.Name, EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketRaw(int domain, int type, int protocol);

    [LibraryImport(Libc.Name, EntryPoint = "bind", SetLastError = true)]
    private static partial int BindRaw(int fd, byte* addr, uint len);

    [LibraryImport(Libc.Name, EntryPoint = "connect", SetLastError = true)]
    private static partial int ConnectRaw(int fd, byte* addr, uint len);

    [LibraryImport(Libc.Name, EntryPoint = "listen", SetLastError = true)]
    private static partial int ListenRaw(int fd, int backlog);

    [LibraryImport(Libc.Name, EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4Raw(int fd, void* addr, void* len, int flags);

    /// <summary>Creates a close-on-exec unix stream socket bound to <paramref name="path"/> and listening.</summary>
    public static int Listen(string path, int backlog)
    {
        int fd = (int)Libc.Check(SocketRaw(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
        try
        {
            WithAddress(path, (addr, len) => Libc.Check(BindRaw(fd, addr, len), "bind"));
            Libc.Check(ListenRaw(fd, backlog), "listen");
            return fd;
        }
        catch
        {
            FileDescriptors.Close(fd);
            throw;
        }
    }

    /// <summary>Connects a new close-on-exec unix stream socket to <paramref name="path"/> (blocking).</summary>
    public static int Connect(string path)
    {
        int fd = (int)Libc.Check(SocketRaw(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
        try
        {
            WithAddress(path, (addr, len) =>
            {
                while (ConnectRaw(fd, addr, len) != 0)
                    if (Libc.LastErrno != Libc.Errno.EINTR) throw new SyscallException("connect", Libc.LastErrno);
                return 0;
            });
            return fd;
        }
        catch
        {
            FileDescriptors.Close(fd);
            throw;
        }
    }

    /// <summary>Blocks until a client connects; returns its close-on-exec descriptor. shutdown(2) of the listener wakes it with an error.</summary>
    public static int Accept(int listener)
    {
        while (true)
        {
            int fd = Accept4Raw(listener, null, null, SOCK_CLOEXEC);
            if (fd >= 0) return fd;
            int errno = Libc.LastErrno;
            if (errno != Libc.Errno.EINTR) throw new SyscallException("accept4", errno);
        }
    }

    private delegate long AddressAction(byte* address, uint length);

    private static void WithAddress(string path, AddressAction action)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= SunPathLength) throw new ArgumentException($"unix socket path longer than {SunPathLength - 1} bytes: {path}", nameof(path));
        byte* addr = stackalloc byte[2 + SunPathLength];
        new Span<byte>(addr, 2 + SunPathLength).Clear();
        *(ushort*)addr = AF_UNIX;
        bytes.CopyTo(new Span<byte>(addr + 2, SunPathLength));
        action(addr, (uint)(2 + bytes.Length + 1));
    }
}
