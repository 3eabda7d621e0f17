using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Microagent.Networking;

/// <summary>A parsed DNS query: its header id and flags and its one question.</summary>
/// <param name="Id">Header ID (RFC 1035 §4.1.1), echoed in the answer.</param>
/// <param name="Flags">Header flags word as received (RD is echoed).</param>
/// <param name="Name">QNAME, lowercased, without the trailing dot.</param>
/// <param name="Type">QTYPE (<see cref="DnsWire.TypeA"/>, <see cref="DnsWire.TypeAaaa"/>, ...).</param>
/// <param name="Class">QCLASS (1 = IN).</param>
/// <param name="QuestionBytes">The question section as received (name + type + class), copied into the answer.</param>
internal sealed record DnsQuery(ushort Id, ushort Flags, string Name, ushort Type, ushort Class, byte[] QuestionBytes);

/// <summary>A query that cannot be parsed; <see cref="Id"/> is set when the header was readable (to answer FORMERR).</summary>
internal sealed class DnsFormatException(string message, ushort? id = null) : Exception(message)
{
    /// <summary>The header ID, when at least the header was there.</summary>
    public ushort? Id { get; } = id;
}

/// <summary>
/// The DNS wire format the broker needs, RFC 1035 §4 ("Messages"): a 12-byte header (§4.1.1), one question (§4.1.2) whose
/// QNAME is a sequence of length-prefixed labels ending in a zero byte (§3.1; a query carries no compression pointers,
/// §4.1.4, so one is refused), and answers of A records (§3.2.2 TYPE 1, §3.4.1 A RDATA: 4 bytes) whose NAME is a pointer
/// to the question (§4.1.4: 0xC00C). AAAA is TYPE 28 (RFC 3596 §2.1). Only standard queries (OPCODE 0) with QDCOUNT 1
/// are answered; anything after the question (EDNS OPT in the additional section, RFC 6891) is ignored.
/// </summary>
internal static class DnsWire
{
    /// <summary>Header length (§4.1.1).</summary>
    public const int HeaderBytes = 12;
    /// <summary>Largest message accepted or produced (the classic UDP limit, §2.3.4).</summary>
    public const int MaxMessageBytes = 512;
    /// <summary>QTYPE A.</summary>
    public const ushort TypeA = 1;
    /// <summary>QTYPE AAAA (RFC 3596).</summary>
    public const ushort TypeAaaa = 28;
    /// <summary>QCLASS IN.</summary>
    public const ushort ClassIn = 1;
    /// <summary>RCODE no error.</summary>
    public const int NoError = 0;
    /// <summary>RCODE format error.</summary>
    public const int FormErr = 1;
    /// <summary>RCODE server failure.</summary>
    public const int ServFail = 2;
    /// <summary>RCODE name error (NXDOMAIN).</summary>
    public const int NxDomain = 3;
    /// <summary>RCODE not implemented.</summary>
    public const int NotImp = 4;
    /// <summary>RCODE refused.</summary>
    public const int Refused = 5;

    /// <summary>Parses a query message; <see cref="DnsFormatException"/> when it is not one.</summary>
    public static DnsQuery ParseQuery(ReadOnlySpan<byte> m)
    {
        if (m.Length < HeaderBytes) throw new DnsFormatException($"message of {m.Length} bytes is shorter than the header");
        if (m.Length > MaxMessageBytes) throw new DnsFormatException($"message of {m.Length} bytes exceeds {MaxMessageBytes}");
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(m);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(m[2..]);
        if ((flags & 0x8000) != 0) throw new DnsFormatException("QR is set: this is a response, not a query", id);
        if (BinaryPrimitives.ReadUInt16BigEndian(m[4..]) != 1) throw new DnsFormatException("QDCOUNT is not 1", id);
        int pos = HeaderBytes;
        var name = new StringBuilder();
        while (true)
        {
            if (pos >= m.Length) throw new DnsFormatException("QNAME runs past the message", id);
            int len = m[pos++];
            if (len == 0) break;
            if ((len & 0xC0) != 0) throw new DnsFormatException("compression pointer or reserved label type in QNAME", id);
            if (pos + len > m.Length) throw new DnsFormatException("label runs past the message", id);
            if (name.Length > 0) name.Append('.');
            foreach (byte b in m.Slice(pos, len))
            {
                if (b is < 0x21 or > 0x7E) throw new DnsFormatException("QNAME holds a byte outside printable ASCII", id);
                name.Append(char.ToLowerInvariant((char)b));
            }
            pos += len;
            if (name.Length > 253) throw new DnsFormatException("QNAME is longer than 253 characters", id);
        }
        if (pos + 4 > m.Length) throw new DnsFormatException("question ends before QTYPE and QCLASS", id);
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(m[pos..]);
        ushort cls = BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 2)..]);
        pos += 4;
        return new DnsQuery(id, flags, name.ToString(), type, cls, m[HeaderBytes..pos].ToArray());
    }

    /// <summary>The OPCODE field of the header flags (§4.1.1).</summary>
    public static int Opcode(ushort flags) => (flags >> 11) & 0xF;

    /// <summary>An answer to <paramref name="q"/> with RCODE <paramref name="rcode"/> and one A record per address (TTL <paramref name="ttl"/> s).</summary>
    public static byte[] BuildAnswer(DnsQuery q, int rcode, IReadOnlyList<IPAddress> addresses, uint ttl = 60)
    {
        var ipv4 = addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork).Take(16).ToList();
        var buf = new byte[HeaderBytes + q.QuestionBytes.Length + ipv4.Count * 16];
        var m = buf.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(m, q.Id);
        // QR=1, OPCODE copied, AA=0, TC=0, RD copied, RA=1, Z=0, RCODE.
        ushort flags = (ushort)(0x8000 | (q.Flags & 0x7800) | (q.Flags & 0x0100) | 0x0080 | (rcode & 0xF));
        BinaryPrimitives.WriteUInt16BigEndian(m[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(m[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(m[6..], (ushort)ipv4.Count);
        q.QuestionBytes.CopyTo(m[HeaderBytes..]);
        int pos = HeaderBytes + q.QuestionBytes.Length;
        foreach (var a in ipv4)
        {
            BinaryPrimitives.WriteUInt16BigEndian(m[pos..], 0xC00C); // NAME: pointer to the question's QNAME at offset 12
            BinaryPrimitives.WriteUInt16BigEndian(m[(pos + 2)..], TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(m[(pos + 4)..], ClassIn);
            BinaryPrimitives.WriteUInt32BigEndian(m[(pos + 6)..], ttl);
            BinaryPrimitives.WriteUInt16BigEndian(m[(pos + 10)..], 4);
            a.TryWriteBytes(m[(pos + 12)..], out _);
            pos += 16;
        }
        return buf;
    }

    /// <summary>A FORMERR answer carrying only the header (the question could not be read).</summary>
    public static byte[] BuildFormatError(ushort id)
    {
        var buf = new byte[HeaderBytes];
        BinaryPrimitives.WriteUInt16BigEndian(buf, id);
        BinaryPrimitives.WriteUInt16BigEndian(buf.AsSpan(2), 0x8000 | 0x0080 | FormErr);
        return buf;
    }

    /// <summary>A query for <paramref name="name"/> of <paramref name="type"/> (tests and tools), RD set.</summary>
    public static byte[] BuildQuery(ushort id, string name, ushort type)
    {
        var labels = name.TrimEnd('.').Split('.');
        var buf = new byte[HeaderBytes + labels.Sum(l => l.Length + 1) + 1 + 4];
        var m = buf.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(m, id);
        BinaryPrimitives.WriteUInt16BigEndian(m[2..], 0x0100);
        BinaryPrimitives.WriteUInt16BigEndian(m[4..], 1);
        int pos = HeaderBytes;
        foreach (string l in labels)
        {
            m[pos++] = (byte)l.Length;
            pos += Encoding.ASCII.GetBytes(l, m[pos..]);
        }
        m[pos++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(m[pos..], type);
        BinaryPrimitives.WriteUInt16BigEndian(m[(pos + 2)..], ClassIn);
        return buf;
    }

    /// <summary>An answer's RCODE and its A addresses (tests and tools; expects answers as <see cref="BuildAnswer"/> writes them).</summary>
    public static (int Rcode, List<IPAddress> Addresses) ParseAnswer(ReadOnlySpan<byte> m)
    {
        if (m.Length < HeaderBytes) throw new DnsFormatException("answer shorter than the header");
        int rcode = BinaryPrimitives.ReadUInt16BigEndian(m[2..]) & 0xF;
        int an = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        int pos = HeaderBytes;
        if (BinaryPrimitives.ReadUInt16BigEndian(m[4..]) > 0)
        {
            while (m[pos] != 0) pos += m[pos] + 1;
            pos += 5;
        }
        var list = new List<IPAddress>();
        for (int i = 0; i < an; i++)
        {
            int rdlen = BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 10)..]);
            if (BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 2)..]) == TypeA && rdlen == 4) list.Add(new IPAddress(m.Slice(pos + 12, 4)));
            pos += 12 + rdlen;
        }
        return (rcode, list);
    }
}
