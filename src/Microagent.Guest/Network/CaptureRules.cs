namespace Microagent.Guest.Network;

/// <summary>
/// The agent's own nf_tables ruleset (docs/ARCHITECTURE.md "Networking"): one table <c>ip microagent</c>, one nat chain on the
/// output hook. In nft syntax:
/// <code>
/// table ip microagent { chain output { type nat hook output priority -100;
///   meta l4proto udp ip daddr != 127.0.0.0/8 udp dport 53 redirect to :53
///   meta l4proto tcp ip daddr != 127.0.0.0/8 tcp dport 53 redirect to :53
///   meta l4proto tcp ip daddr != 127.0.0.0/8 redirect to :TRANSPARENT_PORT } }
/// </code>
/// The batch first adds then deletes the table, so it replaces an earlier copy (a restore, a second request) in one commit.
/// </summary>
internal static class CaptureRules
{
    /// <summary>The table's name.</summary>
    public const string Table = "microagent";
    /// <summary>The chain's name.</summary>
    public const string Chain = "output";

    private const byte IPPROTO_TCP = 6;
    private const byte IPPROTO_UDP = 17;

    /// <summary>Writes the whole batch; returns the writer (its <see cref="NetlinkWriter.AckedSequences"/> are the messages to await).</summary>
    public static NetlinkWriter Build(int transparentPort, int dnsPort)
    {
        var w = new NetlinkWriter();
        uint seq = 1;
        byte ip = NftMessages.NFPROTO_IPV4;
        NftMessages.BatchBegin(w, seq++);
        NftMessages.AddTable(w, seq++, ip, Table);
        NftMessages.DeleteTable(w, seq++, ip, Table);
        NftMessages.AddTable(w, seq++, ip, Table);
        NftMessages.AddBaseChain(w, seq++, ip, Table, Chain, "nat", NftMessages.NF_INET_LOCAL_OUT, NftMessages.NF_IP_PRI_NAT_DST);
        NftMessages.AddRule(w, seq++, ip, Table, Chain, e => Redirect(e, IPPROTO_UDP, 53, dnsPort));
        NftMessages.AddRule(w, seq++, ip, Table, Chain, e => Redirect(e, IPPROTO_TCP, 53, dnsPort));
        NftMessages.AddRule(w, seq++, ip, Table, Chain, e => Redirect(e, IPPROTO_TCP, null, transparentPort));
        NftMessages.BatchEnd(w, seq);
        return w;
    }

    /// <summary>A batch that removes the table (isolated after user). The table must exist: add it first, in the same batch.</summary>
    public static NetlinkWriter BuildRemoval()
    {
        var w = new NetlinkWriter();
        NftMessages.BatchBegin(w, 1);
        NftMessages.AddTable(w, 2, NftMessages.NFPROTO_IPV4, Table);
        NftMessages.DeleteTable(w, 3, NftMessages.NFPROTO_IPV4, Table);
        NftMessages.BatchEnd(w, 4);
        return w;
    }

    private static void Redirect(NetlinkWriter e, byte protocol, int? destinationPort, int toPort)
    {
        const uint r = NftMessages.NFT_REG_1;
        NftMessages.Meta(e, NftMessages.NFT_META_L4PROTO, r);
        NftMessages.Cmp(e, r, NftMessages.NFT_CMP_EQ, [protocol]);
        NftMessages.Payload(e, NftMessages.NFT_PAYLOAD_NETWORK_HEADER, 16, 4, r); // iphdr.daddr
        NftMessages.Bitwise(e, r, r, [0xff, 0, 0, 0], [0, 0, 0, 0]);
        NftMessages.Cmp(e, r, NftMessages.NFT_CMP_NEQ, [127, 0, 0, 0]);
        if (destinationPort is int port)
        {
            NftMessages.Payload(e, NftMessages.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r); // tcphdr/udphdr.dest
            NftMessages.Cmp(e, r, NftMessages.NFT_CMP_EQ, BigEndianPort(port));
        }
        NftMessages.Immediate(e, r, BigEndianPort(toPort));
        NftMessages.Redirect(e, r);
    }

    private static byte[] BigEndianPort(int port) => [(byte)(port >> 8), (byte)port];
}
