namespace Microagent.Vsock;

/// <summary>Where the vhost-user-vsock backend listens and which CID the guest gets.</summary>
/// <param name="VhostUserSocketPath">Unix socket QEMU connects to (<c>-chardev socket,path=...</c>).</param>
/// <param name="HybridSocketPath">Hybrid vsock socket: host clients connect here; guest connections to port P go to <c>&lt;path&gt;_P</c>.</param>
/// <param name="GuestCid">The guest's context id, reported in the device config space (≥ 3).</param>
/// <param name="AcceptReconnect">
/// After an orderly end of a vhost-user session (every ring stopped with GET_VRING_BASE, then the socket closed: a
/// hot-unplugged device), keep listening and serve the next front-end connection (a re-plugged device) instead of
/// completing. The hybrid socket stays up in between.
/// </param>
/// <param name="MaxGuestConnections">
/// Most connections the guest may have open to host listeners at once (<c>--vsock</c> mappings, mediation); further
/// requests are reset (the guest's <c>connect</c> fails) so a hostile guest cannot grow the host's memory or use up its
/// descriptors.
/// </param>
/// <param name="OnGuestConnectionRefused">Called (on the device loop, with the cap; keep it cheap) for each request refused by the cap.</param>
internal sealed record VsockBackendOptions(string VhostUserSocketPath, string HybridSocketPath, ulong GuestCid = 3, bool AcceptReconnect = false,
    int MaxGuestConnections = VsockBackendOptions.DefaultMaxGuestConnections, Action<int>? OnGuestConnectionRefused = null)
{
    /// <summary>The default of <see cref="MaxGuestConnections"/>: a few hundred, three descriptors each on the host.</summary>
    public const int DefaultMaxGuestConnections = 256;
}
