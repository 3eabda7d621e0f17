using System.Buffers.Binary;
using System.Text;

namespace Microagent.Interop;

/// <summary>
/// Blocking AF_UNIX stream sockets on raw descriptors (struct sockaddr_un, include/uapi/linux/un.h).
/// Used where the descriptor is read with recvmsg (SCM_RIGHTS) and must stay in blocking mode.
/// </summary>
internal static class UnixSockets
{
    private const int AF_UNIX = 1;
    private const int SunPathLength = 108;

    /// <summary>Creates a close-on-exec unix stream socket bound to <paramref name="path"/> and listening.</summary>
    public static SafeFileDescriptor Listen(string path, int backlog) => Sockets.Listen(AF_UNIX, Address(path), backlog, "unix");

    /// <summary>Connects a new close-on-exec unix stream socket to <paramref name="path"/> (blocking).</summary>
    public static SafeFileDescriptor Connect(string path) => Sockets.Connect(AF_UNIX, Address(path), "unix");

    /// <summary>Blocks until a client connects; returns its close-on-exec descriptor. shutdown(2) of the listener wakes it with an error.</summary>
    public static SafeFileDescriptor Accept(SafeFileDescriptor listener) => Sockets.Accept(listener, "unix");

    private static byte[] Address(string path)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= SunPathLength) throw new ArgumentException($"unix socket path longer than {SunPathLength - 1} bytes: {path}", nameof(path));
        var addr = new byte[2 + bytes.Length + 1];
        BinaryPrimitives.WriteUInt16LittleEndian(addr, AF_UNIX);
        bytes.CopyTo(addr, 2);
        return addr;
    }
}
