using System.Buffers.Binary;

namespace Microagent.Vsock;

/// <summary>One buffer of a descriptor chain (virtio spec 2.7.5 <c>struct virtq_desc</c>), already checked to be mapped.</summary>
internal readonly record struct DescriptorSegment(ulong Address, uint Length, bool Writable);

/// <summary>Outcome of <see cref="SplitVirtqueue.TryPop"/>.</summary>
internal enum PopResult
{
    /// <summary>The driver has made no new buffer available.</summary>
    Empty,
    /// <summary>A well-formed chain was popped.</summary>
    Chain,
    /// <summary>The chain was malformed (bad next index, loop, unmapped buffer, indirect); its head must be returned with length 0.</summary>
    BadChain,
}

/// <summary>The ring itself is corrupt (index jump larger than the queue, head out of range); the device must stop.</summary>
internal sealed class VirtqueueException(string message) : Exception(message);

/// <summary>
/// Device side of a split virtqueue (virtio spec 1.2 §2.7). Layout, all little-endian:
/// descriptor table <c>{le64 addr, le32 len, le16 flags, le16 next}[size]</c>;
/// available ring <c>{le16 flags, le16 idx, le16 ring[size], le16 used_event}</c>;
/// used ring <c>{le16 flags, le16 idx, {le32 id, le32 len}[size], le16 avail_event}</c>.
/// Invariants: (avail.idx - LastAvailIndex) mod 2^16 ≤ Size, every popped head is &lt; Size and is returned to the
/// used ring exactly once; the used element is written before used.idx is published. EVENT_IDX and INDIRECT_DESC
/// are not negotiated, so used_event/avail_event are ignored and INDIRECT descriptors are rejected.
/// </summary>
internal sealed class SplitVirtqueue
{
    /// <summary>Largest queue size the spec allows.</summary>
    public const int MaxSize = 32768;
    private const ushort DescFNext = 1;
    private const ushort DescFWrite = 2;
    private const ushort DescFIndirect = 4;
    private const ushort AvailFNoInterrupt = 1;

    private ulong _desc, _avail, _used;
    private ushort _nextUsed;

    /// <summary>Number of descriptors; 0 until SET_VRING_NUM.</summary>
    public int Size { get; private set; }

    /// <summary>Index of the next available-ring entry to consume (SET_VRING_BASE / GET_VRING_BASE).</summary>
    public ushort LastAvailIndex { get; set; }

    /// <summary>Whether addresses have been set and validated.</summary>
    public bool HasAddresses { get; private set; }

    /// <summary>Sets the queue size; 1..32768.</summary>
    public void SetSize(uint size)
    {
        if (size == 0 || size > MaxSize) throw new VirtqueueException($"queue size {size} outside 1..{MaxSize}");
        Size = (int)size;
        HasAddresses = false;
    }

    /// <summary>Sets the guest-physical ring addresses and checks each ring lies in mapped memory; reads the current used index.</summary>
    public void SetAddresses(IGuestMemory memory, ulong descriptorTable, ulong availableRing, ulong usedRing)
    {
        if (Size == 0) throw new VirtqueueException("ring addresses set before the queue size");
        if (!memory.TryGetSpan(descriptorTable, 16 * Size, out _)
            || !memory.TryGetSpan(availableRing, 6 + 2 * Size, out _)
            || !memory.TryGetSpan(usedRing, 6 + 8 * Size, out var used))
            throw new VirtqueueException("ring addresses outside guest memory");
        _desc = descriptorTable;
        _avail = availableRing;
        _used = usedRing;
        _nextUsed = BinaryPrimitives.ReadUInt16LittleEndian(used[2..]);
        HasAddresses = true;
    }

    /// <summary>Forgets the addresses (GET_VRING_BASE / reset); size and LastAvailIndex are kept.</summary>
    public void Reset() => HasAddresses = false;

    /// <summary>Whether the driver has made buffers available that are not consumed yet.</summary>
    public bool HasAvailable(IGuestMemory memory) => HasAddresses && AvailableCount(memory) > 0;

    private int AvailableCount(IGuestMemory memory)
    {
        ushort availIdx = BinaryPrimitives.ReadUInt16LittleEndian(Ring(memory, _avail + 2, 2));
        Interlocked.MemoryBarrier(); // ring entries are read only after idx (virtio 2.7.13.2 read barrier).
        int pending = (ushort)(availIdx - LastAvailIndex);
        if (pending > Size) throw new VirtqueueException($"available index jumped by {pending} on a queue of {Size}");
        return pending;
    }

    /// <summary>
    /// Pops the next available chain into <paramref name="chain"/> (cleared first). Chain-level faults give
    /// <see cref="PopResult.BadChain"/> with a valid <paramref name="head"/>; ring-level faults throw <see cref="VirtqueueException"/>.
    /// </summary>
    public PopResult TryPop(IGuestMemory memory, List<DescriptorSegment> chain, out ushort head)
    {
        chain.Clear();
        head = 0;
        if (!HasAddresses || AvailableCount(memory) == 0) return PopResult.Empty;
        int slot = LastAvailIndex % Size;
        head = BinaryPrimitives.ReadUInt16LittleEndian(Ring(memory, _avail + 4 + 2 * (ulong)slot, 2));
        if (head >= Size) throw new VirtqueueException($"available ring entry {head} outside a queue of {Size}");
        LastAvailIndex++;

        int index = head;
        bool sawWritable = false;
        for (int count = 0; ; count++)
        {
            if (count >= Size) { chain.Clear(); return PopResult.BadChain; } // a loop
            var d = Ring(memory, _desc + 16 * (ulong)index, 16);
            ulong addr = BinaryPrimitives.ReadUInt64LittleEndian(d);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(d[12..]);
            ushort next = BinaryPrimitives.ReadUInt16LittleEndian(d[14..]);
            bool writable = (flags & DescFWrite) != 0;
            // Readable descriptors precede writable ones (virtio 2.7.4.2); buffers must lie in one mapped region.
            if ((flags & DescFIndirect) != 0 || len > int.MaxValue || (sawWritable && !writable)
                || !memory.TryGetSpan(addr, (int)len, out _))
            {
                chain.Clear();
                return PopResult.BadChain;
            }
            sawWritable |= writable;
            chain.Add(new DescriptorSegment(addr, len, writable));
            if ((flags & DescFNext) == 0) return PopResult.Chain;
            if (next >= Size) { chain.Clear(); return PopResult.BadChain; }
            index = next;
        }
    }

    /// <summary>Returns <paramref name="head"/> to the driver with <paramref name="writtenLength"/> bytes written.</summary>
    public void PushUsed(IGuestMemory memory, ushort head, uint writtenLength)
    {
        int slot = _nextUsed % Size;
        var elem = Ring(memory, _used + 4 + 8 * (ulong)slot, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(elem, head);
        BinaryPrimitives.WriteUInt32LittleEndian(elem[4..], writtenLength);
        Interlocked.MemoryBarrier(); // the element is visible before the index that publishes it.
        _nextUsed++;
        BinaryPrimitives.WriteUInt16LittleEndian(Ring(memory, _used + 2, 2), _nextUsed);
    }

    /// <summary>Whether the driver wants an interrupt now (VRING_AVAIL_F_NO_INTERRUPT clear). Call after <see cref="PushUsed"/>.</summary>
    public bool ShouldNotify(IGuestMemory memory)
    {
        Interlocked.MemoryBarrier(); // used.idx store is ordered before the flags load.
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(Ring(memory, _avail, 2));
        return (flags & AvailFNoInterrupt) == 0;
    }

    private static Span<byte> Ring(IGuestMemory memory, ulong address, int length)
    {
        if (!memory.TryGetSpan(address, length, out var span))
            throw new VirtqueueException($"ring access at 0x{address:x} outside guest memory");
        return span;
    }
}

/// <summary>Copies between flat buffers and descriptor chains.</summary>
internal static class DescriptorChains
{
    /// <summary>Total length of the readable segments, or -1 when a writable one is present.</summary>
    public static long ReadableLength(List<DescriptorSegment> chain)
    {
        long total = 0;
        foreach (var s in chain) { if (s.Writable) return -1; total += s.Length; }
        return total;
    }

    /// <summary>Total length of the writable segments, or -1 when a readable one is present.</summary>
    public static long WritableLength(List<DescriptorSegment> chain)
    {
        long total = 0;
        foreach (var s in chain) { if (!s.Writable) return -1; total += s.Length; }
        return total;
    }

    /// <summary>Copies destination.Length bytes starting <paramref name="skip"/> bytes into the chain; false if the chain is shorter.</summary>
    public static bool Gather(IGuestMemory memory, List<DescriptorSegment> chain, long skip, Span<byte> destination)
    {
        foreach (var s in chain)
        {
            if (destination.IsEmpty) return true;
            if (skip >= s.Length) { skip -= s.Length; continue; }
            int take = (int)Math.Min(s.Length - skip, destination.Length);
            if (!memory.TryGetSpan(s.Address + (ulong)skip, take, out var src)) return false;
            src.CopyTo(destination);
            destination = destination[take..];
            skip = 0;
        }
        return destination.IsEmpty;
    }

    /// <summary>Copies <paramref name="source"/> into the chain starting <paramref name="skip"/> bytes in; false if the chain is shorter.</summary>
    public static bool Scatter(IGuestMemory memory, List<DescriptorSegment> chain, long skip, ReadOnlySpan<byte> source)
    {
        foreach (var s in chain)
        {
            if (source.IsEmpty) return true;
            if (skip >= s.Length) { skip -= s.Length; continue; }
            int take = (int)Math.Min(s.Length - skip, source.Length);
            if (!memory.TryGetSpan(s.Address + (ulong)skip, take, out var dst)) return false;
            source[..take].CopyTo(dst);
            source = source[take..];
            skip = 0;
        }
        return source.IsEmpty;
    }
}
