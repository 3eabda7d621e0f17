using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microagent.Protocol;

namespace Microagent.Guest.Network;

/// <summary>
/// The guest's resolver (docs/ARCHITECTURE.md "Networking"): UDP and TCP on 127.0.0.1:53, named in /etc/resolv.conf and the
/// target of the DNS capture rules. Each query goes to the host as Frame(DnsExchange) on a new vsock connection and the
/// answer comes back unchanged. The stub reads no more of a message than its header: when the host cannot be reached it
/// answers SERVFAIL (the query with QR set and RCODE 2, RFC 1035 §4.1.1) so the client fails at once.
/// </summary>
internal static class DnsStub
{
    /// <summary>Loopback port (standard DNS).</summary>
    public const int Port = 53;

    /// <summary>Longest one query may take at the host.</summary>
    public static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(15);

    private const int HeaderBytes = 12;

    /// <summary>Binds UDP and TCP on 127.0.0.1:53 and serves for the agent's lifetime.</summary>
    public static void Start()
    {
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, Port));
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, Port));
        tcp.Listen(256);
        _ = Task.Run(() => UdpLoopAsync(udp));
        _ = Task.Run(() => TcpLoopAsync(tcp));
    }

    /// <summary>Asks the host; on any failure, a SERVFAIL built from the query (null when the query has no full header).</summary>
    public static async Task<byte[]?> ResolveAsync(byte[] query)
    {
        if (query.Length < HeaderBytes) return null;
        NetCounters.DnsQuery();
        try
        {
            using var timeout = new CancellationTokenSource(QueryTimeout);
            using Socket host = await HostChannel.ConnectAsync(NetworkInfo.DnsPort).ConfigureAwait(false);
            Stream framing = HostChannel.StreamOf(host);
            await Frame.WriteAsync(framing, new DnsExchange { Message = query }, NetworkJson.Default.DnsExchange, timeout.Token).ConfigureAwait(false);
            DnsExchange? answer = await Frame.ReadAsync(framing, NetworkJson.Default.DnsExchange, timeout.Token).ConfigureAwait(false);
            if (answer is { Message.Length: >= HeaderBytes }) return answer.Message;
        }
        catch (Exception e) { Log.Info($"dns: no host answer ({e.GetType().Name}: {e.Message})"); }
        return ServFail(query);
    }

    /// <summary>The query turned into a SERVFAIL response: same id and question, QR = 1, RCODE = 2.</summary>
    public static byte[] ServFail(byte[] query)
    {
        byte[] r = (byte[])query.Clone();
        r[2] |= 0x80;
        r[3] = (byte)((r[3] & 0xF0) | 2);
        return r;
    }

    private static async Task UdpLoopAsync(Socket udp)
    {
        var buffer = new byte[64 * 1024];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (true)
        {
            SocketReceiveFromResult got;
            try { got = await udp.ReceiveFromAsync(buffer, SocketFlags.None, any).ConfigureAwait(false); }
            catch (SocketException) { continue; } // ICMP port unreachable from an earlier client, and the like
            byte[] query = buffer.AsSpan(0, got.ReceivedBytes).ToArray();
            EndPoint client = got.RemoteEndPoint;
            _ = Task.Run(async () =>
            {
                byte[]? answer = await ResolveAsync(query).ConfigureAwait(false);
                if (answer is null) return;
                try { await udp.SendToAsync(answer, SocketFlags.None, client).ConfigureAwait(false); }
                catch (SocketException) { }
            });
        }
    }

    private static async Task TcpLoopAsync(Socket tcp)
    {
        while (true)
        {
            Socket client;
            try { client = await tcp.AcceptAsync().ConfigureAwait(false); }
            catch (SocketException) { continue; }
            _ = Task.Run(() => ServeTcpAsync(client));
        }
    }

    // RFC 1035 §4.2.2: each message prefixed by a two-byte big-endian length; several queries may share a connection.
    private static async Task ServeTcpAsync(Socket client)
    {
        using (client)
        {
            try
            {
                await using var stream = new NetworkStream(client, ownsSocket: false);
                var length = new byte[2];
                while (true)
                {
                    if (!await ReadExactlyOrEndAsync(stream, length).ConfigureAwait(false)) return;
                    var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                    if (!await ReadExactlyOrEndAsync(stream, query).ConfigureAwait(false)) return;
                    byte[]? answer = await ResolveAsync(query).ConfigureAwait(false);
                    if (answer is null || answer.Length > ushort.MaxValue) return;
                    var framed = new byte[2 + answer.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                    answer.CopyTo(framed, 2);
                    await stream.WriteAsync(framed).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or SocketException) { }
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream s, byte[] buffer)
    {
        try { await s.ReadExactlyAsync(buffer).ConfigureAwait(false); return true; }
        catch (EndOfStreamException) { return false; }
    }
}
