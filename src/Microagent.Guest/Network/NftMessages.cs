using System.Buffers.Binary;

namespace Microagent.Guest.Network;

/// <summary>
/// nf_tables requests over nfnetlink (include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h): a batch of table, chain and
/// rule messages, each <c>struct nfgenmsg</c> {u8 family, u8 version, be16 res_id} then attributes. Every u32 attribute is
/// big-endian; register data is raw bytes in network order. Written by hand because the images carry no <c>nft</c>.
/// </summary>
internal static class NftMessages
{
    /// <summary>NFPROTO_IPV4 (include/uapi/linux/netfilter.h).</summary>
    public const byte NFPROTO_IPV4 = 2;
    /// <summary>NF_INET_LOCAL_OUT.</summary>
    public const uint NF_INET_LOCAL_OUT = 3;
    /// <summary>NF_IP_PRI_NAT_DST (include/uapi/linux/netfilter_ipv4.h).</summary>
    public const int NF_IP_PRI_NAT_DST = -100;

    private const ushort NFNL_MSG_BATCH_BEGIN = 0x10;
    private const ushort NFNL_MSG_BATCH_END = 0x11;
    private const ushort NFNL_SUBSYS_NFTABLES = 10;
    private const ushort NFT_MSG_NEWTABLE = 0;
    private const ushort NFT_MSG_DELTABLE = 2;
    private const ushort NFT_MSG_NEWCHAIN = 3;
    private const ushort NFT_MSG_NEWRULE = 6;

    private const ushort NFTA_TABLE_NAME = 1;
    private const ushort NFTA_CHAIN_TABLE = 1;
    private const ushort NFTA_CHAIN_NAME = 3;
    private const ushort NFTA_CHAIN_HOOK = 4;
    private const ushort NFTA_CHAIN_TYPE = 7;
    private const ushort NFTA_HOOK_HOOKNUM = 1;
    private const ushort NFTA_HOOK_PRIORITY = 2;
    private const ushort NFTA_RULE_TABLE = 1;
    private const ushort NFTA_RULE_CHAIN = 2;
    private const ushort NFTA_RULE_EXPRESSIONS = 4;
    private const ushort NFTA_LIST_ELEM = 1;
    private const ushort NFTA_EXPR_NAME = 1;
    private const ushort NFTA_EXPR_DATA = 2;
    private const ushort NFTA_DATA_VALUE = 1;

    /// <summary>NFT_REG_1: the first 16-byte data register.</summary>
    public const uint NFT_REG_1 = 1;
    /// <summary>NFT_META_L4PROTO (enum nft_meta_keys).</summary>
    public const uint NFT_META_L4PROTO = 16;
    /// <summary>NFT_PAYLOAD_NETWORK_HEADER.</summary>
    public const uint NFT_PAYLOAD_NETWORK_HEADER = 1;
    /// <summary>NFT_PAYLOAD_TRANSPORT_HEADER.</summary>
    public const uint NFT_PAYLOAD_TRANSPORT_HEADER = 2;
    /// <summary>NFT_CMP_EQ.</summary>
    public const uint NFT_CMP_EQ = 0;
    /// <summary>NFT_CMP_NEQ.</summary>
    public const uint NFT_CMP_NEQ = 1;

    private const ushort Create = NetlinkWriter.NLM_F_REQUEST | NetlinkWriter.NLM_F_ACK | NetlinkWriter.NLM_F_CREATE;

    private static void GenMsg(NetlinkWriter w, byte family, ushort resId)
    {
        Span<byte> h = stackalloc byte[4];
        h[0] = family;
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], resId);
        w.Raw(h);
    }

    private static void Begin(NetlinkWriter w, ushort msg, ushort flags, uint seq, byte family)
    {
        w.BeginMessage((ushort)(NFNL_SUBSYS_NFTABLES << 8 | msg), flags, seq);
        GenMsg(w, family, 0);
    }

    /// <summary>NFNL_MSG_BATCH_BEGIN for the nf_tables subsystem.</summary>
    public static void BatchBegin(NetlinkWriter w, uint seq)
    {
        w.BeginMessage(NFNL_MSG_BATCH_BEGIN, NetlinkWriter.NLM_F_REQUEST, seq);
        GenMsg(w, 0, NFNL_SUBSYS_NFTABLES);
        w.EndMessage();
    }

    /// <summary>NFNL_MSG_BATCH_END: the kernel commits everything since the begin, or nothing.</summary>
    public static void BatchEnd(NetlinkWriter w, uint seq)
    {
        w.BeginMessage(NFNL_MSG_BATCH_END, NetlinkWriter.NLM_F_REQUEST, seq);
        GenMsg(w, 0, NFNL_SUBSYS_NFTABLES);
        w.EndMessage();
    }

    /// <summary><c>add table FAMILY NAME</c> (no error when it exists).</summary>
    public static void AddTable(NetlinkWriter w, uint seq, byte family, string name)
    {
        Begin(w, NFT_MSG_NEWTABLE, Create, seq, family);
        w.AttrString(NFTA_TABLE_NAME, name);
        w.EndMessage();
    }

    /// <summary><c>delete table FAMILY NAME</c>, with its chains and rules.</summary>
    public static void DeleteTable(NetlinkWriter w, uint seq, byte family, string name)
    {
        Begin(w, NFT_MSG_DELTABLE, NetlinkWriter.NLM_F_REQUEST | NetlinkWriter.NLM_F_ACK, seq, family);
        w.AttrString(NFTA_TABLE_NAME, name);
        w.EndMessage();
    }

    /// <summary><c>add chain FAMILY TABLE NAME { type TYPE hook HOOK priority PRIORITY; }</c>.</summary>
    public static void AddBaseChain(NetlinkWriter w, uint seq, byte family, string table, string name, string type, uint hook, int priority)
    {
        Begin(w, NFT_MSG_NEWCHAIN, Create, seq, family);
        w.AttrString(NFTA_CHAIN_TABLE, table);
        w.AttrString(NFTA_CHAIN_NAME, name);
        w.BeginNest(NFTA_CHAIN_HOOK);
        w.AttrBe32(NFTA_HOOK_HOOKNUM, hook);
        w.AttrBe32(NFTA_HOOK_PRIORITY, unchecked((uint)priority));
        w.EndNest();
        w.AttrString(NFTA_CHAIN_TYPE, type);
        w.EndMessage();
    }

    /// <summary><c>add rule FAMILY TABLE CHAIN EXPRESSIONS</c>; <paramref name="expressions"/> writes them with the methods below.</summary>
    public static void AddRule(NetlinkWriter w, uint seq, byte family, string table, string chain, Action<NetlinkWriter> expressions)
    {
        Begin(w, NFT_MSG_NEWRULE, Create | NetlinkWriter.NLM_F_APPEND, seq, family);
        w.AttrString(NFTA_RULE_TABLE, table);
        w.AttrString(NFTA_RULE_CHAIN, chain);
        w.BeginNest(NFTA_RULE_EXPRESSIONS);
        expressions(w);
        w.EndNest();
        w.EndMessage();
    }

    private static void Expr(NetlinkWriter w, string name, Action<NetlinkWriter> data)
    {
        w.BeginNest(NFTA_LIST_ELEM);
        w.AttrString(NFTA_EXPR_NAME, name);
        w.BeginNest(NFTA_EXPR_DATA);
        data(w);
        w.EndNest();
        w.EndNest();
    }

    private static void Data(NetlinkWriter w, ushort type, ReadOnlySpan<byte> value)
    {
        w.BeginNest(type);
        w.Attr(NFTA_DATA_VALUE, value);
        w.EndNest();
    }

    /// <summary><c>meta KEY → DREG</c> (NFTA_META_DREG 1, NFTA_META_KEY 2).</summary>
    public static void Meta(NetlinkWriter w, uint key, uint dreg) => Expr(w, "meta", e =>
    {
        e.AttrBe32(2, key);
        e.AttrBe32(1, dreg);
    });

    /// <summary><c>payload load LEN bytes at BASE + OFFSET → DREG</c> (NFTA_PAYLOAD_DREG 1, BASE 2, OFFSET 3, LEN 4).</summary>
    public static void Payload(NetlinkWriter w, uint payloadBase, uint offset, uint len, uint dreg) => Expr(w, "payload", e =>
    {
        e.AttrBe32(1, dreg);
        e.AttrBe32(2, payloadBase);
        e.AttrBe32(3, offset);
        e.AttrBe32(4, len);
    });

    /// <summary><c>cmp SREG OP DATA</c>: the rule stops here unless it holds (NFTA_CMP_SREG 1, OP 2, DATA 3).</summary>
    public static void Cmp(NetlinkWriter w, uint sreg, uint op, byte[] data) => Expr(w, "cmp", e =>
    {
        e.AttrBe32(1, sreg);
        e.AttrBe32(2, op);
        Data(e, 3, data);
    });

    /// <summary><c>bitwise DREG = (SREG &amp; MASK) ^ XOR</c> (NFTA_BITWISE_SREG 1, DREG 2, LEN 3, MASK 4, XOR 5).</summary>
    public static void Bitwise(NetlinkWriter w, uint sreg, uint dreg, byte[] mask, byte[] xor) => Expr(w, "bitwise", e =>
    {
        e.AttrBe32(1, sreg);
        e.AttrBe32(2, dreg);
        e.AttrBe32(3, (uint)mask.Length);
        Data(e, 4, mask);
        Data(e, 5, xor);
    });

    /// <summary><c>immediate DREG = DATA</c> (NFTA_IMMEDIATE_DREG 1, DATA 2).</summary>
    public static void Immediate(NetlinkWriter w, uint dreg, byte[] data) => Expr(w, "immediate", e =>
    {
        e.AttrBe32(1, dreg);
        Data(e, 2, data);
    });

    /// <summary><c>redirect to :port-in-REG</c> (NFTA_REDIR_REG_PROTO_MIN 1): the local address of the outgoing interface, i.e. 127.0.0.1.</summary>
    public static void Redirect(NetlinkWriter w, uint portRegister) => Expr(w, "redir", e => e.AttrBe32(1, portRegister));
}
