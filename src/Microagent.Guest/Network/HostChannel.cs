using System.Net.Sockets;
using Microagent.Guest.Server;
using Microagent.Interop;

namespace Microagent.Guest.Network;

/// <summary>New vsock connections from the agent to the host's network broker (CID 2; Microagent.Protocol/Network.cs).</summary>
internal static class HostChannel
{
    /// <summary>Connects to host port <paramref name="port"/> (blocking connect on a pool thread); the socket owns the descriptor.</summary>
    public static Task<Socket> ConnectAsync(uint port) => Task.Run(() => Sockets.Adopt(Vsock.Connect(Vsock.VMADDR_CID_HOST, port)));

    /// <summary>A Stream over <paramref name="socket"/> for framing; disposing it disposes the socket.</summary>
    public static Stream StreamOf(Socket socket) => new SocketStream(socket);
}

/// <summary>Counters of the guest's network path since boot (answered by <c>net-stats</c>).</summary>
internal static class NetCounters
{
    private static long _captured;
    private static long _dns;

    /// <summary>TCP connections accepted by the transparent listener.</summary>
    public static long CapturedConnections => Interlocked.Read(ref _captured);
    /// <summary>DNS queries relayed (UDP and TCP).</summary>
    public static long DnsQueries => Interlocked.Read(ref _dns);

    /// <summary>One more captured connection.</summary>
    public static void Captured() => Interlocked.Increment(ref _captured);
    /// <summary>One more DNS query.</summary>
    public static void DnsQuery() => Interlocked.Increment(ref _dns);
}
