using System.Buffers.Binary;
using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>Front-end message types (QEMU docs/interop/vhost-user.rst, "Front-end message types").</summary>
internal enum VhostUserRequest : uint
{
    GetFeatures = 1,
    SetFeatures = 2,
    SetOwner = 3,
    ResetOwner = 4,
    SetMemTable = 5,
    SetLogBase = 6,
    SetLogFd = 7,
    SetVringNum = 8,
    SetVringAddr = 9,
    SetVringBase = 10,
    GetVringBase = 11,
    SetVringKick = 12,
    SetVringCall = 13,
    SetVringErr = 14,
    GetProtocolFeatures = 15,
    SetProtocolFeatures = 16,
    GetQueueNum = 17,
    SetVringEnable = 18,
    SetBackendReqFd = 21,
    GetConfig = 24,
    SetConfig = 25,
    GetMaxMemSlots = 36,
}

/// <summary>Feature and flag bits used by this backend (vhost-user.rst; virtio spec 6 "Reserved Feature Bits").</summary>
internal static class VhostUserConstants
{
    /// <summary>Header flags: version 1 in bits 0-1.</summary>
    public const uint FlagVersion = 0x1;
    /// <summary>Header flags: this is a reply.</summary>
    public const uint FlagReply = 0x4;
    /// <summary>Header flags: the front-end wants a reply (only honoured with REPLY_ACK, which is not offered).</summary>
    public const uint FlagNeedReply = 0x8;
    /// <summary>VIRTIO_F_VERSION_1.</summary>
    public const ulong VirtioFVersion1 = 1UL << 32;
    /// <summary>VHOST_USER_F_PROTOCOL_FEATURES.</summary>
    public const ulong ProtocolFeaturesBit = 1UL << 30;
    /// <summary>VHOST_USER_PROTOCOL_F_CONFIG.</summary>
    public const ulong ProtocolFConfig = 1UL << 9;
    /// <summary>SET_VRING_KICK/CALL/ERR payload: bits 0-7 queue index.</summary>
    public const ulong VringIndexMask = 0xff;
    /// <summary>SET_VRING_KICK/CALL/ERR payload: no descriptor attached.</summary>
    public const ulong VringNoFd = 0x100;
    /// <summary>Largest payload accepted (the biggest defined message, SET_MEM_TABLE with 8 regions, is 264 bytes; config is at most 256 + 12).</summary>
    public const int MaxPayload = 4096;
    /// <summary>VHOST_MEMORY_BASELINE_NREGIONS.</summary>
    public const int MaxRegions = 8;
}

/// <summary>Message header: u32 request, u32 flags, u32 size (vhost-user.rst "Header"), little-endian, followed by size bytes of payload.</summary>
internal readonly record struct VhostUserHeader(VhostUserRequest Request, uint Flags, uint Size)
{
    /// <summary>Encoded size.</summary>
    public const int Length = 12;

    /// <summary>Decodes a header.</summary>
    public static VhostUserHeader Read(ReadOnlySpan<byte> s) => new(
        (VhostUserRequest)BinaryPrimitives.ReadUInt32LittleEndian(s),
        BinaryPrimitives.ReadUInt32LittleEndian(s[4..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[8..]));

    /// <summary>Encodes the header.</summary>
    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d, (uint)Request);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], Size);
    }

    /// <summary>The version bits (must be 1).</summary>
    public uint Version => Flags & 0x3;
}

/// <summary>
/// One received message: header, payload, and the descriptors that came with it. The message owns the descriptors:
/// a handler keeps one with <see cref="TakeFd"/>, and <see cref="DisposeFds"/> closes every one not taken.
/// </summary>
internal sealed class VhostUserMessage(VhostUserHeader header, byte[] payload, SafeFileDescriptor[] fds)
{
    /// <summary>The header.</summary>
    public VhostUserHeader Header { get; } = header;

    /// <summary>The payload (Header.Size bytes).</summary>
    public byte[] Payload { get; } = payload;

    private readonly SafeFileDescriptor?[] _fds = fds;

    /// <summary>How many descriptors came with the message.</summary>
    public int FdCount => _fds.Length;

    /// <summary>Moves descriptor <paramref name="index"/> to the caller (who disposes it from then on).</summary>
    public SafeFileDescriptor TakeFd(int index)
    {
        var fd = _fds[index] ?? throw new InvalidOperationException($"descriptor {index} already taken");
        _fds[index] = null;
        return fd;
    }

    /// <summary>Moves every descriptor to the caller.</summary>
    public SafeFileDescriptor[] TakeAllFds()
    {
        var all = new SafeFileDescriptor[_fds.Length];
        for (int i = 0; i < _fds.Length; i++) all[i] = TakeFd(i);
        return all;
    }

    /// <summary>Closes the descriptors no handler took.</summary>
    public void DisposeFds()
    {
        for (int i = 0; i < _fds.Length; i++)
        {
            _fds[i]?.Dispose();
            _fds[i] = null;
        }
    }

    /// <summary>Encodes a reply to <paramref name="request"/> carrying <paramref name="payload"/>.</summary>
    public static byte[] EncodeReply(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[VhostUserHeader.Length + payload.Length];
        new VhostUserHeader(request, VhostUserConstants.FlagVersion | VhostUserConstants.FlagReply, (uint)payload.Length).Write(bytes);
        payload.CopyTo(bytes.AsSpan(VhostUserHeader.Length));
        return bytes;
    }

    /// <summary>Encodes a front-end request (used by tests).</summary>
    public static byte[] EncodeRequest(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[VhostUserHeader.Length + payload.Length];
        new VhostUserHeader(request, VhostUserConstants.FlagVersion, (uint)payload.Length).Write(bytes);
        payload.CopyTo(bytes.AsSpan(VhostUserHeader.Length));
        return bytes;
    }

    /// <summary>The payload as a u64 (features, SET_VRING_KICK/CALL/ERR).</summary>
    public ulong ReadU64()
    {
        Require(8);
        return BinaryPrimitives.ReadUInt64LittleEndian(Payload);
    }

    /// <summary>The payload as <c>struct vhost_vring_state</c> {u32 index, u32 num}.</summary>
    public (uint Index, uint Num) ReadVringState()
    {
        Require(8);
        return (BinaryPrimitives.ReadUInt32LittleEndian(Payload), BinaryPrimitives.ReadUInt32LittleEndian(Payload.AsSpan(4)));
    }

    /// <summary>The payload as <c>struct vhost_vring_addr</c> {u32 index, u32 flags, u64 desc, u64 used, u64 avail, u64 log} (QEMU user addresses).</summary>
    public VringAddress ReadVringAddress()
    {
        Require(40);
        var s = Payload.AsSpan();
        return new VringAddress(
            BinaryPrimitives.ReadUInt32LittleEndian(s),
            BinaryPrimitives.ReadUInt32LittleEndian(s[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[32..]));
    }

    /// <summary>The payload as a memory table: {u32 nregions, u32 padding, regions[] {u64 guest_addr, u64 size, u64 user_addr, u64 mmap_offset}}.</summary>
    public MemoryRegionDescription[] ReadMemoryTable()
    {
        Require(8);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(Payload);
        if (count == 0 || count > VhostUserConstants.MaxRegions)
            throw new VhostUserProtocolException($"memory table with {count} regions");
        Require(8 + (int)count * 32);
        var regions = new MemoryRegionDescription[count];
        for (int i = 0; i < count; i++)
        {
            var s = Payload.AsSpan(8 + i * 32);
            regions[i] = new MemoryRegionDescription(
                BinaryPrimitives.ReadUInt64LittleEndian(s),
                BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(s[24..]));
        }
        return regions;
    }

    /// <summary>The payload as a config request: {u32 offset, u32 size, u32 flags, u8 payload[size]}.</summary>
    public (uint Offset, uint Size, uint Flags) ReadConfigRequest()
    {
        Require(12);
        var s = Payload.AsSpan();
        return (BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[4..]), BinaryPrimitives.ReadUInt32LittleEndian(s[8..]));
    }

    private void Require(int length)
    {
        if (Payload.Length < length)
            throw new VhostUserProtocolException($"{Header.Request}: payload of {Payload.Length} bytes, expected at least {length}");
    }
}

/// <summary><c>struct vhost_vring_addr</c>; addresses are in the front-end's (QEMU's) virtual address space.</summary>
internal readonly record struct VringAddress(uint Index, uint Flags, ulong Descriptor, ulong Used, ulong Available, ulong Log);

/// <summary>One region of SET_MEM_TABLE.</summary>
internal readonly record struct MemoryRegionDescription(ulong GuestAddress, ulong Size, ulong UserAddress, ulong MmapOffset);

/// <summary>The front-end violated the vhost-user protocol; the device stops.</summary>
internal sealed class VhostUserProtocolException(string message) : Exception(message);
