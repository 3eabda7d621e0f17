using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Microagent.Protocol;

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>
/// A minimal stand-in for the host's egress broker, owned by the test process: unix listeners on the workspace's
/// <c>vsock.sock_1026</c> (egress) and <c>vsock.sock_1027</c> (DNS), the paths the vsock backend connects to when the guest
/// connects to CID 2 (docs/ARCHITECTURE.md "Vsock"). It dials nothing: allowed connections are served by the broker itself.
/// Egress: port <see cref="HttpPort"/> answers one HTTP request; <see cref="EchoPort"/> reads to end of stream, then answers
/// "echo:" + what it read (proving half-close); any other port is refused. DNS: every A query for <see cref="Name"/> is
/// answered <see cref="Address"/>, everything else with no answers.
/// </summary>
public sealed class StandInBroker : IDisposable
{
    public const int HttpPort = 8080;
    public const int EchoPort = 8081;
    public const string Name = "service.example.test";
    public const string Address = "203.0.113.7";

    private readonly Socket _egress;
    private readonly Socket _dns;
    private readonly CancellationTokenSource _stop = new();

    internal ConcurrentQueue<EgressRequest> EgressRequests { get; } = new();
    public ConcurrentQueue<string> DnsNames { get; } = new();

    public StandInBroker(string hybridSocket)
    {
        _egress = Listen($"{hybridSocket}_{NetworkInfo.EgressPort}");
        _dns = Listen($"{hybridSocket}_{NetworkInfo.DnsPort}");
        _ = AcceptAsync(_egress, ServeEgressAsync);
        _ = AcceptAsync(_dns, ServeDnsAsync);
    }

    private static Socket Listen(string path)
    {
        File.Delete(path);
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(path));
        s.Listen(64);
        return s;
    }

    private async Task AcceptAsync(Socket listener, Func<Socket, Task> serve)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket c;
            try { c = await listener.AcceptAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(async () =>
            {
                using (c)
                    try { await serve(c); } catch (Exception) { }
            });
        }
    }

    private async Task ServeEgressAsync(Socket c)
    {
        await using var s = new NetworkStream(c, ownsSocket: false);
        var request = await Frame.ReadAsync(s, NetworkJson.Default.EgressRequest);
        if (request is null) return;
        EgressRequests.Enqueue(request);
        bool allowed = request.Port is HttpPort or EchoPort;
        await Frame.WriteAsync(s, new EgressVerdict { Allowed = allowed, Reason = allowed ? null : "stand-in refuses" }, NetworkJson.Default.EgressVerdict);
        if (!allowed) return;
        if (request.Port == HttpPort)
        {
            var head = new StringBuilder();
            var buf = new byte[4096];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                int n = await s.ReadAsync(buf);
                if (n == 0) break;
                head.Append(Encoding.ASCII.GetString(buf, 0, n));
            }
            string body = $"hello from {request.Ip}:{request.Port}\n";
            await s.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Length: {body.Length}\r\n\r\n{body}"));
            c.Shutdown(SocketShutdown.Send);
        }
        else
        {
            using var got = new MemoryStream();
            await s.CopyToAsync(got); // until the guest half-closes
            await s.WriteAsync(Encoding.ASCII.GetBytes("echo:"));
            await s.WriteAsync(got.ToArray());
            c.Shutdown(SocketShutdown.Send);
        }
    }

    private async Task ServeDnsAsync(Socket c)
    {
        await using var s = new NetworkStream(c, ownsSocket: false);
        var query = await Frame.ReadAsync(s, NetworkJson.Default.DnsExchange);
        if (query is null) return;
        (string name, int qtype, int end) = Question(query.Message);
        DnsNames.Enqueue(name);
        await Frame.WriteAsync(s, new DnsExchange { Message = Answer(query.Message, end, qtype == 1 && name == Name) }, NetworkJson.Default.DnsExchange);
    }

    /// <summary>RFC 1035 §4.1.2: the first question's name, type, and where the question ends.</summary>
    private static (string Name, int Type, int End) Question(byte[] m)
    {
        var labels = new List<string>();
        int i = 12;
        while (m[i] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(m, i + 1, m[i]));
            i += 1 + m[i];
        }
        i++;
        return (string.Join('.', labels).ToLowerInvariant(), BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(i)), i + 4);
    }

    private static byte[] Answer(byte[] query, int questionEnd, bool withAddress)
    {
        var r = new List<byte>(query.AsSpan(0, questionEnd).ToArray());
        r[2] = 0x81; // QR, RD
        r[3] = 0x80; // RA, NOERROR
        r[6] = 0; r[7] = (byte)(withAddress ? 1 : 0); // ANCOUNT
        r[8] = 0; r[9] = 0; r[10] = 0; r[11] = 0;
        if (withAddress)
        {
            r.AddRange([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]); // name pointer to the question, A, IN, TTL 60, RDLENGTH 4
            r.AddRange(System.Net.IPAddress.Parse(Address).GetAddressBytes());
        }
        return [.. r];
    }

    public void Dispose()
    {
        _stop.Cancel();
        _egress.Dispose();
        _dns.Dispose();
    }
}
