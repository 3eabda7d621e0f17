using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// socket(2), bind(2), listen(2), accept4(2), connect(2) for any address family, on raw blocking
/// descriptors. Family-specific files (<see cref="UnixSockets"/>, <see cref="Vsock"/>) only build the sockaddr.
/// </summary>
internal static unsafe partial class Sockets
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
    public static SafeFileDescriptor Listen(int family, ReadOnlySpan<byte> address, int backlog, string what)
    {
        var fd = new SafeFileDescriptor((int)Libc.Check(SocketRaw(family, SOCK_STREAM | SOCK_CLOEXEC, 0), $"socket({what})"));
        try
        {
            fixed (byte* a = address) Libc.Check(BindRaw(fd.DangerousFd, a, (uint)address.Length), $"bind({what})");
            Libc.Check(ListenRaw(fd.DangerousFd, backlog), $"listen({what})");
            return fd;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>A close-on-exec stream socket of <paramref name="family"/> connected to <paramref name="address"/> (blocking; EINTR retried).</summary>
    public static SafeFileDescriptor Connect(int family, ReadOnlySpan<byte> address, string what)
    {
        var fd = new SafeFileDescriptor((int)Libc.Check(SocketRaw(family, SOCK_STREAM | SOCK_CLOEXEC, 0), $"socket({what})"));
        fixed (byte* a = address)
        {
            while (ConnectRaw(fd.DangerousFd, a, (uint)address.Length) != 0)
            {
                int errno = Libc.LastErrno;
                if (errno == Errno.EINTR) continue;
                fd.Dispose();
                throw new SyscallException($"connect({what})", errno);
            }
        }
        return fd;
    }

    /// <summary>Blocks until a client connects; returns its close-on-exec descriptor. shutdown(2) of the listener wakes it with an error.</summary>
    public static SafeFileDescriptor Accept(SafeFileDescriptor listener, string what)
    {
        using var lease = new FdLease(listener);
        while (true)
        {
            int fd = Accept4Raw(lease.Fd, null, null, SOCK_CLOEXEC);
            if (fd >= 0) return new SafeFileDescriptor(fd);
            int errno = Libc.LastErrno;
            if (errno != Errno.EINTR) throw new SyscallException($"accept4({what})", errno);
        }
    }

    /// <summary>
    /// Moves a connected stream socket into a <see cref="Socket"/> that owns it from now on; <paramref name="fd"/> is
    /// left invalid (disposing it later is a no-op).
    /// </summary>
    public static Socket Adopt(SafeFileDescriptor fd)
    {
        var handle = new SafeSocketHandle(fd.DangerousGetHandle(), ownsHandle: true);
        fd.SetHandleAsInvalid();
        try { return new Socket(handle); }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
