using System.Net;
using System.Net.Sockets;
using Microagent.Guest.Network;

namespace Microagent.Tests.Guest.Network;

/// <summary>
/// The netlink encoders byte for byte against the layouts of include/uapi/linux/netlink.h, rtnetlink.h and
/// netfilter/nf_tables.h (little-endian host order for netlink and rtnetlink headers; big-endian nf_tables u32s).
/// </summary>
public sealed class NetlinkEncodingTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    [Fact]
    public void Set_link_up_by_name()
    {
        var w = new NetlinkWriter();
        RouteMessages.SetUp(w, 1, "lo");
        Assert.Equal(Hex(
            "28000000 1000 0500 01000000 00000000" + // nlmsghdr: len 40, RTM_NEWLINK, REQUEST|ACK, seq 1, pid 0
            "00 00 0000 00000000 01000000 01000000" + // ifinfomsg: AF_UNSPEC, index 0, flags IFF_UP, change IFF_UP
            "0700 0300 6c6f00 00"),                    // IFLA_IFNAME "lo\0", padded
            w.Bytes.ToArray());
        Assert.Equal([1u], w.AckedSequences);
    }

    [Fact]
    public void Add_dummy_link_nests_the_kind()
    {
        var w = new NetlinkWriter();
        RouteMessages.AddLink(w, 7, "d0", "dummy");
        Assert.Equal(Hex(
            "38000000 1000 0506 07000000 00000000" +  // len 56, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            "00000000 00000000 00000000 00000000" +
            "0700 0300 643000 00" +                   // IFLA_IFNAME "d0"
            "1000 1280" +                             // IFLA_LINKINFO | NLA_F_NESTED, len 16
            "0a00 0100 64756d6d7900 0000"),           // IFLA_INFO_KIND "dummy"
            w.Bytes.ToArray());
    }

    [Fact]
    public void Ipv6_address_uses_linux_af_inet6_and_no_dad()
    {
        var w = new NetlinkWriter();
        RouteMessages.AddAddress(w, 2, 3, IPAddress.Parse("fd00::2"), 128);
        byte[] b = w.Bytes.ToArray();
        Assert.Equal(Hex("0a 80 00 00 03000000"), b[16..24]); // ifaddrmsg: AF_INET6 (10, not .NET's 23), /128, index 3
        Assert.Equal(Hex("1400 0200 fd000000000000000000000000000002"), b[24..44]); // IFA_LOCAL
        Assert.Equal(Hex("1400 0100 fd000000000000000000000000000002"), b[44..64]); // IFA_ADDRESS
        Assert.Equal(Hex("0800 0800 02000000"), b[64..72]);                       // IFA_FLAGS IFA_F_NODAD
        Assert.Equal(72, b.Length);
    }

    [Fact]
    public void Ipv4_default_route_is_scope_link_through_the_device()
    {
        var w = new NetlinkWriter();
        RouteMessages.AddDefaultRoute(w, 4, 5, AddressFamily.InterNetwork);
        Assert.Equal(Hex(
            "24000000 1800 0506 04000000 00000000" + // len 36, RTM_NEWROUTE
            "02 00 00 00 fe 03 fd 01 00000000" +     // rtmsg: AF_INET, /0, main table, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST
            "0800 0400 05000000"),                   // RTA_OIF 5
            w.Bytes.ToArray());
    }

    [Fact]
    public void Nf_tables_batch_begin_and_table()
    {
        var w = new NetlinkWriter();
        NftMessages.BatchBegin(w, 1);
        NftMessages.AddTable(w, 2, NftMessages.NFPROTO_IPV4, "t");
        NftMessages.BatchEnd(w, 3);
        Assert.Equal(Hex(
            "14000000 1000 0100 01000000 00000000 00 00 000a" +          // NFNL_MSG_BATCH_BEGIN, res_id = NFNL_SUBSYS_NFTABLES (be16)
            "1c000000 000a 0504 02000000 00000000 02 00 0000" +          // NFT_MSG_NEWTABLE (subsys 10 << 8), REQUEST|ACK|CREATE, NFPROTO_IPV4
            "0600 0100 7400 0000" +                                      // NFTA_TABLE_NAME "t"
            "14000000 1100 0100 03000000 00000000 00 00 000a"),          // NFNL_MSG_BATCH_END
            w.Bytes.ToArray());
        Assert.Equal([2u], w.AckedSequences); // begin and end are not acknowledged
    }

    [Fact]
    public void Nat_output_chain_has_a_big_endian_hook()
    {
        var w = new NetlinkWriter();
        NftMessages.AddBaseChain(w, 3, NftMessages.NFPROTO_IPV4, "t", "c", "nat", NftMessages.NF_INET_LOCAL_OUT, NftMessages.NF_IP_PRI_NAT_DST);
        byte[] b = w.Bytes.ToArray();
        Assert.Equal(Hex("030a 0504"), b[4..8]); // NFT_MSG_NEWCHAIN
        Assert.Equal(Hex(
            "0600 0100 7400 0000" +              // NFTA_CHAIN_TABLE "t"
            "0600 0300 6300 0000" +              // NFTA_CHAIN_NAME "c"
            "1400 0480 0800 0100 00000003 0800 0200 ffffff9c" + // NFTA_CHAIN_HOOK { HOOKNUM 3, PRIORITY -100 }, big-endian
            "0800 0700 6e617400"),               // NFTA_CHAIN_TYPE "nat"
            b[20..]);
    }

    [Fact]
    public void Rule_expressions_nest_name_and_data()
    {
        var w = new NetlinkWriter();
        NftMessages.AddRule(w, 5, NftMessages.NFPROTO_IPV4, "t", "c", e => NftMessages.Meta(e, NftMessages.NFT_META_L4PROTO, NftMessages.NFT_REG_1));
        byte[] b = w.Bytes.ToArray();
        Assert.Equal(76, b.Length);
        Assert.Equal(Hex("060a 050c"), b[4..8]); // NFT_MSG_NEWRULE, REQUEST|ACK|CREATE|APPEND
        Assert.Equal(Hex(
            "2800 0480" +                        // NFTA_RULE_EXPRESSIONS
            "2400 0180" +                        // NFTA_LIST_ELEM
            "0900 0100 6d65746100 000000" +      // NFTA_EXPR_NAME "meta"
            "1400 0280" +                        // NFTA_EXPR_DATA
            "0800 0200 00000010" +               // NFTA_META_KEY NFT_META_L4PROTO
            "0800 0100 00000001"),               // NFTA_META_DREG NFT_REG_1
            b[36..]);
    }

    [Fact]
    public void Redirect_rule_loads_the_port_into_the_register_it_redirects_from()
    {
        var w = new NetlinkWriter();
        NftMessages.Immediate(w, NftMessages.NFT_REG_1, [0x3a, 0x99]);
        NftMessages.Redirect(w, NftMessages.NFT_REG_1);
        Assert.Equal(Hex(
            "2c00 0180 0e00 0100 696d6d65646961746500 0000" + // LIST_ELEM, NAME "immediate"
            "1800 0280 0800 0100 00000001" +                  // DATA { DREG 1,
            "0c00 0280 0600 0100 3a99 0000" +                 //   DATA { NFTA_DATA_VALUE 15001 big-endian } }
            "1c00 0180 0a00 0100 7265646972000000" +          // LIST_ELEM, NAME "redir"
            "0c00 0280 0800 0100 00000001"),                  // DATA { REG_PROTO_MIN 1 }
            w.Bytes.ToArray());
    }

    [Fact]
    public void Capture_batch_replaces_the_table_in_one_commit()
    {
        NetlinkWriter w = CaptureRules.Build(15001, 53);
        // begin, add table, delete table, add table, chain, three rules, end: all but begin and end acknowledged, in order
        Assert.Equal([2u, 3u, 4u, 5u, 6u, 7u, 8u], w.AckedSequences);
        byte[] b = w.Bytes.ToArray();
        Assert.Equal(0, b.Length % 4);
        Assert.Equal(Hex("3a99"), FindImmediatePorts(b)[^1]);
    }

    [Fact]
    public void Acks_report_sequence_and_errno()
    {
        byte[] datagram = Hex(
            "24000000 0200 0001 02000000 00000000 00000000" + "10000000 0a00 0500 02000000 00000000" + // seq 2: ok
            "24000000 0200 0000 03000000 00000000 efffffff" + "10000000 1000 0500 03000000 00000000"); // seq 3: -17 EEXIST
        Assert.Equal([(2u, 0), (3u, 17)], NetlinkReplies.Acks(datagram));
    }

    private static List<byte[]> FindImmediatePorts(byte[] b)
    {
        // NFTA_DATA_VALUE of two bytes inside an immediate: "0600 0100 PPPP 0000"
        var found = new List<byte[]>();
        for (int i = 0; i + 8 <= b.Length; i += 4)
            if (b[i] == 6 && b[i + 1] == 0 && b[i + 2] == 1 && b[i + 3] == 0 && i >= 12 && b[i - 4] == 0x0c && b[i - 2] == 2)
                found.Add(b[(i + 4)..(i + 6)]);
        return found;
    }
}
