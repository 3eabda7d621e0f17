using System.Buffers.Binary;

namespace Microagent.Guest.Network;

/// <summary>
/// Reads the kernel's answers to acknowledged requests (include/uapi/linux/netlink.h): each is an NLMSG_ERROR message
/// (type 2) whose payload starts with <c>int error</c> (0 = success, else -errno) followed by the request's header.
/// </summary>
internal static class NetlinkReplies
{
    /// <summary>NLMSG_ERROR.</summary>
    public const ushort NLMSG_ERROR = 2;
    /// <summary>NLMSG_DONE.</summary>
    public const ushort NLMSG_DONE = 3;

    /// <summary>The (sequence, errno) of every NLMSG_ERROR in one received datagram; errno 0 means the request succeeded.</summary>
    public static List<(uint Seq, int Errno)> Acks(ReadOnlySpan<byte> datagram)
    {
        var acks = new List<(uint, int)>();
        int offset = 0;
        while (offset + NetlinkWriter.HeaderBytes <= datagram.Length)
        {
            ReadOnlySpan<byte> m = datagram[offset..];
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(m);
            if (len < NetlinkWriter.HeaderBytes || len > m.Length) break;
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(m[4..]);
            uint seq = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
            if (type == NLMSG_ERROR && len >= NetlinkWriter.HeaderBytes + 4)
                acks.Add((seq, -BinaryPrimitives.ReadInt32LittleEndian(m[NetlinkWriter.HeaderBytes..])));
            offset += (len + 3) & ~3;
        }
        return acks;
    }
}
