using System.Buffers.Binary;
using System.Text;

namespace Microagent.Guest.Network;

/// <summary>
/// Builds netlink messages (include/uapi/linux/netlink.h): <c>struct nlmsghdr</c> {u32 len, u16 type, u16 flags, u32 seq,
/// u32 pid} in host order (little-endian on x86_64), a family header, then attributes <c>struct nlattr</c> {u16 len, u16 type}
/// each padded to NLA_ALIGNTO (4). Several messages may follow each other in one buffer (a batch).
/// </summary>
internal sealed class NetlinkWriter
{
    /// <summary>NLM_F_REQUEST.</summary>
    public const ushort NLM_F_REQUEST = 0x1;
    /// <summary>NLM_F_ACK: the kernel answers with an NLMSG_ERROR carrying 0 or -errno.</summary>
    public const ushort NLM_F_ACK = 0x4;
    /// <summary>NLM_F_EXCL (new requests): fail when the object exists.</summary>
    public const ushort NLM_F_EXCL = 0x200;
    /// <summary>NLM_F_CREATE (new requests): create when it does not exist.</summary>
    public const ushort NLM_F_CREATE = 0x400;
    /// <summary>NLM_F_APPEND (new requests): add at the end of the list.</summary>
    public const ushort NLM_F_APPEND = 0x800;
    /// <summary>NLA_F_NESTED: the attribute holds attributes.</summary>
    public const ushort NLA_F_NESTED = 0x8000;
    /// <summary>sizeof(struct nlmsghdr).</summary>
    public const int HeaderBytes = 16;

    private byte[] _buffer = new byte[512];
    private int _length;
    private int _messageStart = -1;
    private readonly Stack<int> _nests = new();

    /// <summary>Sequence numbers of the messages written with <see cref="NLM_F_ACK"/>, in order.</summary>
    public List<uint> AckedSequences { get; } = [];

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> Bytes => _buffer.AsSpan(0, _length);

    /// <summary>Starts a message; <see cref="EndMessage"/> fills in its length.</summary>
    public void BeginMessage(ushort type, ushort flags, uint seq)
    {
        if (_messageStart >= 0) throw new InvalidOperationException("a message is already open");
        Align();
        _messageStart = _length;
        Span<byte> h = Reserve(HeaderBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], seq);
        if ((flags & NLM_F_ACK) != 0) AckedSequences.Add(seq);
    }

    /// <summary>Closes the open message: writes nlmsg_len and pads to 4.</summary>
    public void EndMessage()
    {
        if (_messageStart < 0 || _nests.Count > 0) throw new InvalidOperationException("no message open, or a nest is still open");
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_messageStart), (uint)(_length - _messageStart));
        _messageStart = -1;
        Align();
    }

    /// <summary>Raw bytes (a family header such as ifinfomsg or nfgenmsg).</summary>
    public void Raw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Reserve(bytes.Length));

    /// <summary>An attribute with a binary payload.</summary>
    public void Attr(ushort type, ReadOnlySpan<byte> payload)
    {
        Align();
        Span<byte> a = Reserve(4 + payload.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)(4 + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(a[2..], type);
        payload.CopyTo(a[4..]);
        Align();
    }

    /// <summary>A NUL-terminated string attribute (NLA_STRING / NLA_NUL_STRING).</summary>
    public void AttrString(ushort type, string value)
    {
        byte[] s = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, s);
        Attr(type, s);
    }

    /// <summary>A u32 attribute in host order (rtnetlink).</summary>
    public void AttrU32(ushort type, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, value);
        Attr(type, v);
    }

    /// <summary>A u32 attribute in network order (nf_tables reads every u32 with ntohl).</summary>
    public void AttrBe32(ushort type, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, value);
        Attr(type, v);
    }

    /// <summary>Opens a nested attribute (NLA_F_NESTED set); close it with <see cref="EndNest"/>.</summary>
    public void BeginNest(ushort type)
    {
        Align();
        _nests.Push(_length);
        Span<byte> a = Reserve(4);
        BinaryPrimitives.WriteUInt16LittleEndian(a[2..], (ushort)(type | NLA_F_NESTED));
    }

    /// <summary>Closes the innermost nested attribute.</summary>
    public void EndNest()
    {
        int start = _nests.Pop();
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(start), (ushort)(_length - start));
    }

    private void Align()
    {
        int pad = (4 - (_length & 3)) & 3;
        Reserve(pad).Clear();
    }

    private Span<byte> Reserve(int n)
    {
        if (_length + n > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + n));
        Span<byte> s = _buffer.AsSpan(_length, n);
        s.Clear();
        _length += n;
        return s;
    }
}
