using System.Buffers.Binary;
using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

/// <summary>One contiguous guest-physical region backed by a byte array.</summary>
internal sealed class FakeGuestMemory(ulong baseAddress, int size) : IGuestMemory
{
    public ulong Base { get; } = baseAddress;
    public byte[] Bytes { get; } = new byte[size];

    public bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        span = default;
        if (length < 0 || address < Base || address - Base > (ulong)Bytes.Length || (ulong)length > (ulong)Bytes.Length - (address - Base)) return false;
        span = Bytes.AsSpan((int)(address - Base), length);
        return true;
    }

    public Span<byte> At(ulong address, int length) => Bytes.AsSpan((int)(address - Base), length);
}

/// <summary>The driver half of a split virtqueue in fake memory: builds descriptor chains and reads the used ring.</summary>
internal sealed class FakeDriver
{
    public const ushort Next = 1, Write = 2, Indirect = 4;
    private ulong _nextBuffer;
    private int _nextDesc;

    public FakeDriver(FakeGuestMemory memory, int size, ulong offset = 0)
    {
        Memory = memory;
        Size = size;
        Desc = memory.Base + offset;
        Avail = Desc + 16UL * (ulong)size;
        Used = (Avail + 6 + 2UL * (ulong)size + 3) & ~3UL;
        _nextBuffer = (Used + 6 + 8UL * (ulong)size + 0xfff) & ~0xfffUL;
    }

    public FakeGuestMemory Memory { get; }
    public int Size { get; }
    public ulong Desc { get; }
    public ulong Avail { get; }
    public ulong Used { get; }

    public ushort AvailIdx
    {
        get => BinaryPrimitives.ReadUInt16LittleEndian(Memory.At(Avail + 2, 2));
        set => BinaryPrimitives.WriteUInt16LittleEndian(Memory.At(Avail + 2, 2), value);
    }

    public ushort UsedIdx => BinaryPrimitives.ReadUInt16LittleEndian(Memory.At(Used + 2, 2));

    public (uint Id, uint Len) UsedElem(int ringSlot)
    {
        var s = Memory.At(Used + 4 + 8UL * (ulong)(ringSlot % Size), 8);
        return (BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[4..]));
    }

    public void SetAvailFlags(ushort flags) => BinaryPrimitives.WriteUInt16LittleEndian(Memory.At(Avail, 2), flags);

    public ulong Allocate(int length)
    {
        ulong a = _nextBuffer;
        _nextBuffer += (ulong)((length + 15) & ~15);
        return a;
    }

    public void WriteDescriptor(int index, ulong addr, uint len, ushort flags, ushort next)
    {
        var d = Memory.At(Desc + 16UL * (ulong)index, 16);
        BinaryPrimitives.WriteUInt64LittleEndian(d, addr);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], len);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    public void Publish(ushort head)
    {
        ushort idx = AvailIdx;
        BinaryPrimitives.WriteUInt16LittleEndian(Memory.At(Avail + 4 + 2UL * (ulong)(idx % Size), 2), head);
        AvailIdx = (ushort)(idx + 1);
    }

    /// <summary>Adds a chain: readable segments carry data, writable ones are (length) buffers. Returns the head and buffer addresses.</summary>
    public (ushort Head, ulong[] Buffers) AddChain(params (byte[]? Data, int Length, bool Writable)[] segments)
    {
        var addrs = new ulong[segments.Length];
        int head = _nextDesc % Size;
        for (int i = 0; i < segments.Length; i++)
        {
            var (data, length, writable) = segments[i];
            int len = data?.Length ?? length;
            addrs[i] = Allocate(len);
            data?.CopyTo(Memory.At(addrs[i], len));
            int index = _nextDesc++ % Size;
            bool last = i == segments.Length - 1;
            WriteDescriptor(index, addrs[i], (uint)len, (ushort)((last ? 0 : Next) | (writable ? Write : 0)), (ushort)(_nextDesc % Size));
        }
        Publish((ushort)head);
        return ((ushort)head, addrs);
    }

    public static (byte[]?, int, bool) Readable(byte[] data) => (data, data.Length, false);
    public static (byte[]?, int, bool) Writable(int length) => (null, length, true);
}
