using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// Everything the vhost-user front-end told us about one device-handled queue (vhost-user.rst "Ring states"):
/// size (SET_VRING_NUM) and base (SET_VRING_BASE) live in <see cref="Ring"/>; the addresses as QEMU sent them,
/// the kick, call and err eventfds and the enabled flag live here. Owned by the device loop; owns its descriptors.
/// Invariant: <see cref="Started"/> from SET_VRING_ADDR until GET_VRING_BASE (the front-end's stop) or the end of the session.
/// </summary>
internal sealed class VhostUserQueue(int index, SplitVirtqueue ring, string name) : IDisposable
{
    /// <summary>Queue index (virtio spec 5.10.2).</summary>
    public int Index { get; } = index;

    /// <summary>"rx" or "tx", for messages.</summary>
    public string Name { get; } = name;

    /// <summary>The split virtqueue the device processes (size, last available index, translated addresses).</summary>
    public SplitVirtqueue Ring { get; } = ring;

    /// <summary>SET_VRING_ADDR as received (front-end user addresses); null until then and after a stop.</summary>
    public VringAddress? Address { get; private set; }

    /// <summary>SET_VRING_ENABLE, or implied by the kick when VHOST_USER_F_PROTOCOL_FEATURES was not negotiated.</summary>
    public bool Enabled { get; set; }

    /// <summary>The call eventfd (device → driver notification); null when none was given.</summary>
    public SafeFileDescriptor? Call { get; private set; }

    /// <summary>The err eventfd; kept open and never signalled (errors end the session instead).</summary>
    public SafeFileDescriptor? Err { get; private set; }

    /// <summary>The watcher of the kick eventfd; null when none was given.</summary>
    public KickWatcher? Kick { get; private set; }

    /// <summary>The front-end set the ring up and has not stopped it.</summary>
    public bool Started => Address is not null;

    /// <summary>Records the ring addresses (translated later, once a memory table is present).</summary>
    public void SetAddress(VringAddress address) => Address = address;

    /// <summary>Replaces the call eventfd (null: none), closing the previous one.</summary>
    public void SetCall(SafeFileDescriptor? fd)
    {
        Call?.Dispose();
        Call = fd;
    }

    /// <summary>Replaces the err eventfd (null: none), closing the previous one.</summary>
    public void SetErr(SafeFileDescriptor? fd)
    {
        Err?.Dispose();
        Err = fd;
    }

    /// <summary>Replaces the kick watcher (null: none), stopping the previous one.</summary>
    public void SetKick(KickWatcher? kick)
    {
        Kick?.Stop();
        Kick = kick;
    }

    /// <summary>Signals the call eventfd, if any.</summary>
    public void Notify()
    {
        if (Call is { } call) EventFd.TrySignal(call);
    }

    /// <summary>GET_VRING_BASE: the ring stops; its kick watcher ends. <paramref name="enabledAfter"/> is the enabled state a stopped ring returns to.</summary>
    public void Stop(bool enabledAfter)
    {
        Ring.Reset();
        Address = null;
        SetKick(null);
        Enabled = enabledAfter;
    }

    /// <summary>End of the session: stops the ring and closes every descriptor.</summary>
    public void Dispose()
    {
        Stop(enabledAfter: false);
        SetCall(null);
        SetErr(null);
    }
}
