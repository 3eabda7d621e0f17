using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// socket(2), bind(2), listen(2), accept4(2), connect(2) for any address family, on raw blocking
/// descriptors. Family-specific files (<see cref="UnixSockets"/>, <see cref="Vsock"/>) only build the sockaddr.
/// </summary>
public static unsafe partial class Sockets
{
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_CLOEXEC = 0x80000;

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

    /// <summary>A close-on-exec stream socket of <paramref name="family"/>, bound to <paramref name="address"/> and listening.</summary>
    public static int Listen(int family, ReadOnlySpan<byte> address, int backlog, string what)
    {
        int fd = (int)Libc.Check(SocketRaw(family, SOCK_STREAM | SOCK_CLOEXEC, 0), $"socket({what})");
        try
        {
            fixed (byte* a = address) Libc.Check(BindRaw(fd, a, (uint)address.Length), $"bind({what})");
            Libc.Check(ListenRaw(fd, backlog), $"listen({what})");
            return fd;
        }
        catch
        {
            FileDescriptors.Close(fd);
            throw;
        }
    }

    /// <summary>A close-on-exec stream socket of <paramref name="family"/> connected to <paramref name="address"/> (blocking; EINTR retried).</summary>
    public static int Connect(int family, ReadOnlySpan<byte> address, string what)
    {
        int fd = (int)Libc.Check(SocketRaw(family, SOCK_STREAM | SOCK_CLOEXEC, 0), $"socket({what})");
        fixed (byte* a = address)
        {
            while (ConnectRaw(fd, a, (uint)address.Length) != 0)
            {
                int errno = Libc.LastErrno;
                if (errno == Libc.Errno.EINTR) continue;
                FileDescriptors.Close(fd);
                throw new SyscallException($"connect({what})", errno);
            }
        }
        return fd;
    }

    /// <summary>Blocks until a client connects; returns its close-on-exec descriptor. shutdown(2) of the listener wakes it with an error.</summary>
    public static int Accept(int listener, string what)
    {
        while (true)
        {
            int fd = Accept4Raw(listener, null, null, SOCK_CLOEXEC);
            if (fd >= 0) return fd;
            int errno = Libc.LastErrno;
            if (errno != Libc.Errno.EINTR) throw new SyscallException($"accept4({what})", errno);
        }
    }
}
