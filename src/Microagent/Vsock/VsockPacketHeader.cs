using System.Buffers.Binary;

namespace Microagent.Vsock;

/// <summary>Operations of a virtio-vsock packet (Linux include/uapi/linux/virtio_vsock.h, enum virtio_vsock_op; virtio spec 5.10.6).</summary>
internal enum VsockOp : ushort
{
    Invalid = 0,
    Request = 1,
    Response = 2,
    Rst = 3,
    Shutdown = 4,
    Rw = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
}

/// <summary>Constants from include/uapi/linux/virtio_vsock.h and include/uapi/linux/vm_sockets.h.</summary>
internal static class VsockConstants
{
    /// <summary>VIRTIO_VSOCK_TYPE_STREAM; SEQPACKET (2) is not supported here.</summary>
    public const ushort TypeStream = 1;
    /// <summary>VIRTIO_VSOCK_SHUTDOWN_RCV: the sender will receive no more data.</summary>
    public const uint ShutdownRcv = 1;
    /// <summary>VIRTIO_VSOCK_SHUTDOWN_SEND: the sender will send no more data.</summary>
    public const uint ShutdownSend = 2;
    /// <summary>VMADDR_CID_HOST.</summary>
    public const ulong HostCid = 2;
    /// <summary>Largest payload accepted in one tx packet (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE, 64 KiB).</summary>
    public const int MaxPacketPayload = 64 * 1024;
    /// <summary>Virtio device id of the socket device (virtio spec 5.10.1).</summary>
    public const int DeviceId = 19;
}

/// <summary>
/// <c>struct virtio_vsock_hdr</c> (include/uapi/linux/virtio_vsock.h), 44 bytes, packed, little-endian:
/// le64 src_cid, le64 dst_cid, le32 src_port, le32 dst_port, le32 len, le16 type, le16 op, le32 flags,
/// le32 buf_alloc, le32 fwd_cnt.
/// </summary>
internal readonly record struct VsockPacketHeader(
    ulong SrcCid, ulong DstCid, uint SrcPort, uint DstPort, uint Len, ushort Type, VsockOp Op, uint Flags, uint BufAlloc, uint FwdCnt)
{
    /// <summary>Encoded size.</summary>
    public const int Size = 44;

    /// <summary>Decodes the first <see cref="Size"/> bytes of <paramref name="source"/>.</summary>
    public static VsockPacketHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size) throw new ArgumentException("short vsock header", nameof(source));
        return new VsockPacketHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(source),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[20..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[24..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[28..]),
            (VsockOp)BinaryPrimitives.ReadUInt16LittleEndian(source[30..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[32..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[36..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[40..]));
    }

    /// <summary>Encodes into the first <see cref="Size"/> bytes of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        if (destination.Length < Size) throw new ArgumentException("short vsock header buffer", nameof(destination));
        BinaryPrimitives.WriteUInt64LittleEndian(destination, SrcCid);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], DstCid);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], SrcPort);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], DstPort);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], Len);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[28..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[30..], (ushort)Op);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[32..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[36..], BufAlloc);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[40..], FwdCnt);
    }
}
