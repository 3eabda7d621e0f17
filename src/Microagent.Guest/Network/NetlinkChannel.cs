using Microagent.Interop;

namespace Microagent.Guest.Network;

/// <summary>Sends a buffer of netlink requests and waits for the kernel's acknowledgement of each (docs/ARCHITECTURE.md "Networking").</summary>
internal static class NetlinkChannel
{
    /// <summary>
    /// Sends <paramref name="w"/> on a new socket of <paramref name="protocol"/>; throws <see cref="SyscallException"/> naming
    /// <paramref name="what"/> at the first request the kernel refused, unless <paramref name="tolerated"/> says its errno is fine.
    /// </summary>
    public static void Execute(int protocol, NetlinkWriter w, string what, Func<int, bool>? tolerated = null)
    {
        using SafeFileDescriptor fd = Netlink.Open(protocol);
        Netlink.Send(fd, w.Bytes);
        var pending = new HashSet<uint>(w.AckedSequences);
        var buffer = new byte[16 * 1024];
        while (pending.Count > 0)
        {
            int n = Netlink.Receive(fd, buffer);
            foreach ((uint seq, int errno) in NetlinkReplies.Acks(buffer.AsSpan(0, n)))
            {
                if (errno != 0 && !(tolerated?.Invoke(errno) ?? false)) throw new SyscallException($"{what} (request {seq})", errno);
                pending.Remove(seq);
            }
        }
    }
}
