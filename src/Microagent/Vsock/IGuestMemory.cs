namespace Microagent.Vsock;

/// <summary>Guest-physical memory as seen by the device. Spans are valid until the memory table changes.</summary>
internal interface IGuestMemory
{
    /// <summary>
    /// The bytes [address, address+length) when the whole range lies inside one mapped region; false otherwise
    /// (unmapped, straddling regions, or overflowing). <paramref name="length"/> may be 0.
    /// </summary>
    bool TryGetSpan(ulong address, int length, out Span<byte> span);
}
