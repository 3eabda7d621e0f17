using System.Buffers.Binary;

namespace Microagent.Interop;

/// <summary>
/// AF_VSOCK stream sockets (struct sockaddr_vm, include/uapi/linux/vm_sockets.h). .NET <c>Socket</c> cannot
/// create them (dotnet/runtime#58327), so descriptors are made here and wrapped by the caller.
/// </summary>
internal static class Vsock
{
    /// <summary>AF_VSOCK (include/linux/socket.h).</summary>
    public const int AF_VSOCK = 40;
    /// <summary>VMADDR_CID_ANY: bind to any CID.</summary>
    public const uint VMADDR_CID_ANY = 0xFFFFFFFF;
    /// <summary>VMADDR_CID_HOST: the hypervisor host.</summary>
    public const uint VMADDR_CID_HOST = 2;

    /// <summary>sizeof(struct sockaddr_vm): family u16, reserved u16, port u32, cid u32, flags u8, zero[3].</summary>
    private const int SockaddrVmLength = 16;

    private static byte[] Address(uint cid, uint port)
    {
        var addr = new byte[SockaddrVmLength];
        BinaryPrimitives.WriteUInt16LittleEndian(addr, AF_VSOCK);
        BinaryPrimitives.WriteUInt32LittleEndian(addr.AsSpan(4), port);
        BinaryPrimitives.WriteUInt32LittleEndian(addr.AsSpan(8), cid);
        return addr;
    }

    /// <summary>Creates a listening vsock socket on (<paramref name="cid"/>, <paramref name="port"/>).</summary>
    public static SafeFileDescriptor Listen(uint cid, uint port, int backlog = 256) => Sockets.Listen(AF_VSOCK, Address(cid, port), backlog, "vsock");

    /// <summary>Blocks until a connection arrives; returns its descriptor (close-on-exec). Retries EINTR.</summary>
    public static SafeFileDescriptor Accept(SafeFileDescriptor listenFd) => Sockets.Accept(listenFd, "vsock");

    /// <summary>Connects to (<paramref name="cid"/>, <paramref name="port"/>); returns the descriptor.</summary>
    public static SafeFileDescriptor Connect(uint cid, uint port) => Sockets.Connect(AF_VSOCK, Address(cid, port), "vsock");
}
