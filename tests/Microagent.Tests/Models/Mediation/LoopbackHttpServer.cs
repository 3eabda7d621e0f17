using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Microagent.Tests.Models.Mediation;

/// <summary>A request as the test server read it.</summary>
public sealed record ServerRequest(string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    /// <summary>The first value of a header, or null.</summary>
    public string? Header(string name) => Headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>The body as text.</summary>
    public string Text => Encoding.UTF8.GetString(Body);
}

/// <summary>
/// A small HTTP/1.1 server on 127.0.0.1 for the mediator's tests (an OpenAI-compatible upstream, a policy URL): its own reader
/// (Content-Length bodies, one request per connection), and a handler that writes the raw response, so a test controls every
/// byte and every pause.
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<ServerRequest, Stream, CancellationToken, Task> _handler;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _accept;
    private readonly List<ServerRequest> _requests = [];

    public LoopbackHttpServer(Func<ServerRequest, Stream, CancellationToken, Task> handler)
    {
        _handler = handler;
        _listener.Start();
        _accept = Task.Run(AcceptAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>The requests received so far.</summary>
    public IReadOnlyList<ServerRequest> Requests { get { lock (_requests) return [.. _requests]; } }

    private async Task AcceptAsync()
    {
        while (!_cts.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_cts.Token); }
            catch (Exception) { return; }
            _ = Task.Run(async () =>
            {
                using var c = client;
                try
                {
                    var stream = c.GetStream();
                    var req = await ReadAsync(stream, _cts.Token);
                    lock (_requests) _requests.Add(req);
                    await _handler(req, stream, _cts.Token);
                }
                catch (Exception) { }
            });
        }
    }

    private static async Task<ServerRequest> ReadAsync(Stream s, CancellationToken ct)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
        {
            if (await s.ReadAsync(one, ct) == 0) throw new EndOfStreamException();
            head.Add(one[0]);
        }
        var lines = Encoding.Latin1.GetString(head.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var parts = lines[0].Split(' ');
        var headers = lines.Skip(1).Select(l => new KeyValuePair<string, string>(l[..l.IndexOf(':')], l[(l.IndexOf(':') + 1)..].Trim())).ToList();
        int length = int.Parse(headers.FirstOrDefault(h => h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Value ?? "0");
        var body = new byte[length];
        await s.ReadExactlyAsync(body, ct);
        return new ServerRequest(parts[0], parts[1], headers, body);
    }

    /// <summary>Writes a whole response with Content-Length.</summary>
    public static async Task RespondAsync(Stream s, int status, string contentType, string body, CancellationToken ct, params string[] extraHeaders)
    {
        byte[] b = Encoding.UTF8.GetBytes(body);
        string head = $"HTTP/1.1 {status} X\r\nContent-Type: {contentType}\r\nContent-Length: {b.Length}\r\n" +
            string.Concat(extraHeaders.Select(h => h + "\r\n")) + "Connection: close\r\n\r\n";
        await s.WriteAsync(Encoding.ASCII.GetBytes(head), ct);
        await s.WriteAsync(b, ct);
        await s.FlushAsync(ct);
    }

    /// <summary>Writes one chunk of a chunked body.</summary>
    public static async Task ChunkAsync(Stream s, string data, CancellationToken ct)
    {
        byte[] b = Encoding.UTF8.GetBytes(data);
        await s.WriteAsync(Encoding.ASCII.GetBytes($"{b.Length:x}\r\n"), ct);
        await s.WriteAsync(b, ct);
        await s.WriteAsync("\r\n"u8.ToArray(), ct);
        await s.FlushAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _listener.Stop();
        try { await _accept; } catch (Exception) { }
        _cts.Dispose();
    }
}
