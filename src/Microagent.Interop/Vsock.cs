using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// AF_VSOCK stream sockets (include/uapi/linux/vm_sockets.h). .NET <c>Socket</c> cannot create them
/// (dotnet/runtime#58327), so descriptors are made here and wrapped by the caller.
/// </summary>
public static unsafe partial class Vsock
{
    /// <summary>AF_VSOCK (include/linux/socket.h).</summary>
    public const int AF_VSOCK = 40;
    /// <summary>VMADDR_CID_ANY: bind to any CID.</summary>
    public const uint VMADDR_CID_ANY = 0xFFFFFFFF;
    /// <summary>VMADDR_CID_HOST: the hypervisor host.</summary>
    public const uint VMADDR_CID_HOST = 2;

    private const int SOCK_STREAM = 1;
    private const int SOCK_CLOEXEC = 0x80000;

    /// <summary>struct sockaddr_vm (16 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrVm
    {
        public ushort Family;
        public ushort Reserved1;
        public uint Port;
        public uint Cid;
        public byte Flags;
        public byte Zero0, Zero1, Zero2;
    }

    [LibraryImport(Libc.Name, EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketRaw(int domain, int type, int protocol);

    [LibraryImport(Libc.Name, EntryPoint = "bind", SetLastError = true)]
    private static partial int BindRaw(int fd, SockaddrVm* addr, int len);

    [LibraryImport(Libc.Name, EntryPoint = "listen", SetLastError = true)]
    private static partial int ListenRaw(int fd, int backlog);

    [LibraryImport(Libc.Name, EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4Raw(int fd, void* addr, void* len, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "connect", SetLastError = true)]
    private static partial int ConnectRaw(int fd, SockaddrVm* addr, int len);

    private static SockaddrVm Address(uint cid, uint port) =>
        new() { Family = AF_VSOCK, Port = port, Cid = cid };

    /// <summary>Creates a listening vsock socket on (<paramref name="cid"/>, <paramref name="port"/>).</summary>
    public static int Listen(uint cid, uint port, int backlog = 256)
    {
        int fd = (int)Libc.Check(SocketRaw(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket(AF_VSOCK)");
        try
        {
            SockaddrVm addr = Address(cid, port);
            Libc.Check(BindRaw(fd, &addr, sizeof(SockaddrVm)), "bind(vsock)");
            Libc.Check(ListenRaw(fd, backlog), "listen(vsock)");
            return fd;
        }
        catch
        {
            FileDescriptors.Close(fd);
            throw;
        }
    }

    /// <summary>Blocks until a connection arrives; returns its descriptor (close-on-exec). Retries EINTR.</summary>
    public static int Accept(int listenFd)
    {
        while (true)
        {
            int fd = Accept4Raw(listenFd, null, null, SOCK_CLOEXEC);
            if (fd >= 0) return fd;
            int errno = Libc.LastErrno;
            if (errno != Libc.Errno.EINTR) throw new SyscallException("accept4(vsock)", errno);
        }
    }

    /// <summary>Connects to (<paramref name="cid"/>, <paramref name="port"/>); returns the descriptor.</summary>
    public static int Connect(uint cid, uint port)
    {
        int fd = (int)Libc.Check(SocketRaw(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket(AF_VSOCK)");
        SockaddrVm addr = Address(cid, port);
        if (ConnectRaw(fd, &addr, sizeof(SockaddrVm)) < 0)
        {
            int errno = Libc.LastErrno;
            FileDescriptors.Close(fd);
            throw new SyscallException("connect(vsock)", errno);
        }
        return fd;
    }
}
