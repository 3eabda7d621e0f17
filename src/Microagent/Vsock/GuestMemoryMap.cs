using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// The regions of a vhost-user SET_MEM_TABLE, each mapped from its memfd. Translates guest-physical addresses
/// (descriptor buffers) and front-end user addresses (ring addresses in SET_VRING_ADDR) to mapped bytes.
/// Owned by the device loop; disposing unmaps every region.
/// </summary>
internal sealed class GuestMemoryMap : IGuestMemory, IDisposable
{
    private readonly Region[] _regions;

    private sealed record Region(MemoryRegionDescription Description, MemoryMapping Mapping);

    private GuestMemoryMap(Region[] regions) => _regions = regions;

    /// <summary>Maps every region (the file range [mmap_offset, mmap_offset+size) of its fd). Closes the fds in all cases.</summary>
    public static GuestMemoryMap Map(MemoryRegionDescription[] regions, SafeFileDescriptor[] fds)
    {
        var mapped = new List<Region>();
        try
        {
            if (fds.Length != regions.Length)
                throw new VhostUserProtocolException($"memory table has {regions.Length} regions but {fds.Length} descriptors");
            for (int i = 0; i < regions.Length; i++)
            {
                var r = regions[i];
                if (r.Size == 0 || r.GuestAddress + r.Size < r.GuestAddress || r.UserAddress + r.Size < r.UserAddress
                    || r.MmapOffset + r.Size < r.MmapOffset)
                    throw new VhostUserProtocolException($"memory region {i} is empty or wraps around");
                // The whole file prefix is mapped so that mmap_offset need not be page aligned.
                var mapping = MemoryMapping.MapShared(fds[i], r.MmapOffset + r.Size);
                mapped.Add(new Region(r, mapping));
            }
            return new GuestMemoryMap(mapped.ToArray());
        }
        catch
        {
            foreach (var m in mapped) m.Mapping.Dispose();
            throw;
        }
        finally
        {
            foreach (var fd in fds) fd.Dispose(); // a mapping outlives its descriptor
        }
    }

    /// <inheritdoc />
    public bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        foreach (var r in _regions)
        {
            var d = r.Description;
            if (length >= 0 && address >= d.GuestAddress && address - d.GuestAddress <= d.Size
                && (ulong)length <= d.Size - (address - d.GuestAddress))
            {
                span = r.Mapping.GetSpan(d.MmapOffset + (address - d.GuestAddress), length);
                return true;
            }
        }
        span = default;
        return false;
    }

    /// <summary>Translates a front-end user address to a guest-physical address; false when no region holds it.</summary>
    public bool TryTranslateUserAddress(ulong userAddress, out ulong guestAddress)
    {
        foreach (var r in _regions)
        {
            var d = r.Description;
            if (userAddress >= d.UserAddress && userAddress - d.UserAddress < d.Size)
            {
                guestAddress = d.GuestAddress + (userAddress - d.UserAddress);
                return true;
            }
        }
        guestAddress = 0;
        return false;
    }

    /// <summary>Unmaps every region.</summary>
    public void Dispose()
    {
        foreach (var r in _regions) r.Mapping.Dispose();
    }
}
