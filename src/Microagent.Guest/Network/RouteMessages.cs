using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Microagent.Guest.Network;

/// <summary>
/// rtnetlink requests the agent sends (include/uapi/linux/rtnetlink.h, if_link.h, if_addr.h; rtnetlink(7)): create a link
/// of a kind, set a link up, add an address, add a default route through a device. Every integer is host order.
/// </summary>
internal static class RouteMessages
{
    /// <summary>RTM_NEWLINK.</summary>
    public const ushort RTM_NEWLINK = 16;
    /// <summary>RTM_DELLINK.</summary>
    public const ushort RTM_DELLINK = 17;
    /// <summary>RTM_NEWADDR.</summary>
    public const ushort RTM_NEWADDR = 20;
    /// <summary>RTM_NEWROUTE.</summary>
    public const ushort RTM_NEWROUTE = 24;

    /// <summary>AF_INET (include/linux/socket.h; .NET's AddressFamily numbers differ for IPv6).</summary>
    public const byte AF_INET = 2;
    /// <summary>AF_INET6.</summary>
    public const byte AF_INET6 = 10;

    private const ushort IFLA_IFNAME = 3;
    private const ushort IFLA_LINKINFO = 18;
    private const ushort IFLA_INFO_KIND = 1;
    private const uint IFF_UP = 0x1;
    private const ushort IFA_ADDRESS = 1;
    private const ushort IFA_LOCAL = 2;
    private const ushort IFA_FLAGS = 8;
    private const uint IFA_F_NODAD = 0x02;
    private const byte RT_SCOPE_UNIVERSE = 0;
    private const byte RT_SCOPE_LINK = 253;
    private const byte RT_TABLE_MAIN = 254;
    private const byte RTPROT_BOOT = 3;
    private const byte RTN_UNICAST = 1;
    private const ushort RTA_OIF = 4;

    private const ushort New = NetlinkWriter.NLM_F_REQUEST | NetlinkWriter.NLM_F_ACK | NetlinkWriter.NLM_F_CREATE | NetlinkWriter.NLM_F_EXCL;

    /// <summary>struct ifinfomsg {u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change}.</summary>
    private static void IfInfo(NetlinkWriter w, int index, uint flags, uint change)
    {
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], change);
        w.Raw(h);
    }

    /// <summary><c>ip link add NAME type KIND</c>.</summary>
    public static void AddLink(NetlinkWriter w, uint seq, string name, string kind)
    {
        w.BeginMessage(RTM_NEWLINK, New, seq);
        IfInfo(w, 0, 0, 0);
        w.AttrString(IFLA_IFNAME, name);
        w.BeginNest(IFLA_LINKINFO);
        w.AttrString(IFLA_INFO_KIND, kind);
        w.EndNest();
        w.EndMessage();
    }

    /// <summary><c>ip link del NAME</c>.</summary>
    public static void DeleteLink(NetlinkWriter w, uint seq, string name)
    {
        w.BeginMessage(RTM_DELLINK, NetlinkWriter.NLM_F_REQUEST | NetlinkWriter.NLM_F_ACK, seq);
        IfInfo(w, 0, 0, 0);
        w.AttrString(IFLA_IFNAME, name);
        w.EndMessage();
    }

    /// <summary><c>ip link set NAME up</c> (the kernel finds the link by name when the index is 0).</summary>
    public static void SetUp(NetlinkWriter w, uint seq, string name)
    {
        w.BeginMessage(RTM_NEWLINK, NetlinkWriter.NLM_F_REQUEST | NetlinkWriter.NLM_F_ACK, seq);
        IfInfo(w, 0, IFF_UP, IFF_UP);
        w.AttrString(IFLA_IFNAME, name);
        w.EndMessage();
    }

    /// <summary><c>ip addr add ADDRESS/PREFIX dev INDEX</c> (IPv6 without duplicate address detection).</summary>
    public static void AddAddress(NetlinkWriter w, uint seq, int ifIndex, IPAddress address, byte prefix)
    {
        bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        w.BeginMessage(RTM_NEWADDR, New, seq);
        // struct ifaddrmsg {u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index}
        Span<byte> h = stackalloc byte[8];
        h[0] = v6 ? AF_INET6 : AF_INET;
        h[1] = prefix;
        h[3] = RT_SCOPE_UNIVERSE;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], ifIndex);
        w.Raw(h);
        byte[] a = address.GetAddressBytes();
        w.Attr(IFA_LOCAL, a);
        w.Attr(IFA_ADDRESS, a);
        if (v6) w.AttrU32(IFA_FLAGS, IFA_F_NODAD);
        w.EndMessage();
    }

    /// <summary><c>ip [-6] route add default dev INDEX</c>.</summary>
    public static void AddDefaultRoute(NetlinkWriter w, uint seq, int ifIndex, AddressFamily family)
    {
        w.BeginMessage(RTM_NEWROUTE, New, seq);
        // struct rtmsg {u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags}
        Span<byte> h = stackalloc byte[12];
        h[0] = family == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;
        h[4] = RT_TABLE_MAIN;
        h[5] = RTPROT_BOOT;
        h[6] = family == AddressFamily.InterNetwork ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
        h[7] = RTN_UNICAST;
        w.Raw(h);
        w.AttrU32(RTA_OIF, (uint)ifIndex);
        w.EndMessage();
    }
}
