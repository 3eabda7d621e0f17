using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Microagent.Interop;

/// <summary>
/// getsockopt(SOL_IP, SO_ORIGINAL_DST) (include/uapi/linux/netfilter_ipv4.h): where a connection that netfilter redirected
/// to a local listener was going, as <c>struct sockaddr_in</c> (family u16, port be16, address 4 bytes, zero 8 bytes).
/// </summary>
internal static class OriginalDestination
{
    private const int SOL_IP = 0;
    private const int SO_ORIGINAL_DST = 80;
    private const int SockaddrInLength = 16;

    /// <summary>The original IPv4 destination of <paramref name="accepted"/>; null when it was not redirected (ENOENT) or is not IPv4.</summary>
    public static IPEndPoint? Of(Socket accepted)
    {
        Span<byte> addr = stackalloc byte[SockaddrInLength];
        int n;
        try { n = accepted.GetRawSocketOption(SOL_IP, SO_ORIGINAL_DST, addr); }
        catch (SocketException) { return null; }
        return Parse(addr[..n]);
    }

    /// <summary>Decodes a <c>struct sockaddr_in</c>; null when it is short or not AF_INET.</summary>
    public static IPEndPoint? Parse(ReadOnlySpan<byte> sockaddrIn)
    {
        if (sockaddrIn.Length < 8 || BinaryPrimitives.ReadUInt16LittleEndian(sockaddrIn) != (ushort)AddressFamily.InterNetwork) return null;
        int port = BinaryPrimitives.ReadUInt16BigEndian(sockaddrIn[2..]);
        return new IPEndPoint(new IPAddress(sockaddrIn.Slice(4, 4)), port);
    }
}
