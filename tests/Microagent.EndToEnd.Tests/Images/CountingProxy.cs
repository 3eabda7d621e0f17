using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Microagent.EndToEnd.Tests.Images;

/// <summary>One HTTP exchange the proxy relayed: the request line, its Range header, and the body bytes served for it.</summary>
public sealed record ProxiedRequest(string RequestLine, string? Range, int Status, long ContentLength)
{
    public long BodyBytesServed;
}

/// <summary>
/// A plain HTTP/1.1 relay on 127.0.0.1 in front of a registry that records every request (line, Range header, status, body bytes
/// actually relayed). Armed with a stall, it stops relaying the first large blob body after <c>stallAfter</c> bytes and holds the
/// connection open (so the client sees a pull that hangs part-way, as over a dead network). Requests are not pipelined by
/// the client, so each connection is one request, then its response, in turn.
/// </summary>
public sealed class CountingProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly long _minBlob;
    private readonly long _stallAmount;
    private int _armed = 1;
    private readonly TaskCompletionSource<ProxiedRequest> _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Relays to <paramref name="upstream"/>; the first blob body over <paramref name="minBlob"/> bytes stalls after <paramref name="stallAmount"/>.</summary>
    public CountingProxy(string upstream, long minBlob, long stallAmount)
    {
        (_upstreamHost, _upstreamPort) = (upstream.Split(':')[0], int.Parse(upstream.Split(':')[1]));
        (_minBlob, _stallAmount) = (minBlob, stallAmount);
        _listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public List<ProxiedRequest> Requests { get; } = [];

    /// <summary>Completes when the armed stall has happened, with the request it cut.</summary>
    public Task<ProxiedRequest> Stalled => _stalled.Task;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var _ = client;
        using var upstream = new TcpClient();
        try
        {
            await upstream.ConnectAsync(_upstreamHost, _upstreamPort, _stop.Token);
            var down = client.GetStream();
            var up = upstream.GetStream();
            while (true)
            {
                byte[]? head = await ReadHeadAsync(down);
                if (head is null) return;
                string text = Encoding.ASCII.GetString(head);
                string[] lines = text.Split("\r\n");
                string? range = lines.FirstOrDefault(l => l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase))?[6..].Trim();
                await up.WriteAsync(head, _stop.Token);

                byte[] respHead = await ReadHeadAsync(up) ?? throw new IOException("upstream closed");
                string[] respLines = Encoding.ASCII.GetString(respHead).Split("\r\n");
                int status = int.Parse(respLines[0].Split(' ')[1]);
                long length = respLines.Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    .Select(l => long.Parse(l[15..].Trim())).DefaultIfEmpty(0).First();
                var record = new ProxiedRequest(lines[0], range, status, length);
                lock (Requests) Requests.Add(record);
                await down.WriteAsync(respHead, _stop.Token);
                if (lines[0].StartsWith("HEAD ", StringComparison.Ordinal)) continue;

                bool stall = status == 200 && lines[0].Contains("/blobs/", StringComparison.Ordinal) && length > _minBlob && Interlocked.Exchange(ref _armed, 0) == 1;
                long relay = stall ? _stallAmount : length;
                byte[] buf = new byte[64 * 1024];
                long left = relay;
                while (left > 0)
                {
                    int n = await up.ReadAsync(buf.AsMemory(0, (int)Math.Min(buf.Length, left)), _stop.Token);
                    if (n == 0) throw new IOException("upstream closed mid-body");
                    await down.WriteAsync(buf.AsMemory(0, n), _stop.Token);
                    Interlocked.Add(ref record.BodyBytesServed, n);
                    left -= n;
                }
                if (stall)
                {
                    await down.FlushAsync(_stop.Token);
                    _stalled.TrySetResult(record);
                    await Task.Delay(Timeout.Infinite, _stop.Token); // hold the connection: the client waits for bytes that never come
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    private async Task<byte[]?> ReadHeadAsync(NetworkStream s)
    {
        var head = new List<byte>();
        byte[] one = new byte[1];
        while (true)
        {
            int n = await s.ReadAsync(one, _stop.Token);
            if (n == 0) return head.Count == 0 ? null : throw new IOException("closed mid-head");
            head.Add(one[0]);
            int c = head.Count;
            if (c >= 4 && head[c - 4] == '\r' && head[c - 3] == '\n' && head[c - 2] == '\r' && head[c - 1] == '\n') return [.. head];
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
