using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Registries;

namespace Microagent.Tests.Registries;

/// <summary>
/// A hostile or broken registry must neither hang a pull nor make the client allocate without bound:
/// every case runs against a raw HTTP/1.1 server on 127.0.0.1 that answers exactly as scripted.
/// </summary>
public sealed class RegistryClientRobustnessTests : IAsyncDisposable
{
    private const string Secret = "hunter2-s3cr3t";
    private const string TokenText = "tok-abcdef-123456";
    private readonly RawHttpServer _server = new();

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private ImageReference Image => ImageReference.Parse($"{_server.Authority}/test/img:latest");

    private RegistryClient Client(double timeoutSeconds = 5) =>
        new(null, new RegistryOptions(MaxAttempts: 1, Timeout: TimeSpan.FromSeconds(timeoutSeconds)))
        {
            CredentialOverride = new RegistryCredential("alice", Secret),
        };

    private static async Task<MicroagentException> FailsWithin(TimeSpan limit, Func<Task> action)
    {
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<MicroagentException>(() => action().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(sw.Elapsed < limit, $"took {sw.Elapsed}");
        Assert.DoesNotContain(Secret, e.ToString());
        Assert.DoesNotContain(TokenText, e.ToString());
        Assert.DoesNotContain("YWxpY2U6", e.ToString()); // base64 of "alice:"
        return e;
    }

    [Fact]
    public async Task ChunkedManifestOverTheLimitFailsTypedAndBounded()
    {
        _server.Handler = async (path, s, ct) =>
        {
            await RawHttpServer.WriteAsync(s, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n", ct);
            byte[] chunk = Encoding.ASCII.GetBytes(new string(' ', 64 << 10));
            byte[] head = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n"), tail = "\r\n"u8.ToArray();
            while (true) // endless: only the client can stop it
            {
                await s.WriteAsync(head, ct);
                await s.WriteAsync(chunk, ct);
                await s.WriteAsync(tail, ct);
                Interlocked.Add(ref _server.BytesSent, chunk.Length);
            }
        };
        using var client = Client();
        var e = await FailsWithin(TimeSpan.FromSeconds(20), () => client.GetManifestAsync(Image, "latest"));
        Assert.Equal(ErrorKind.Permanent, e.Kind);
        Assert.Contains("manifest", e.Message);
        Assert.Contains("larger than", e.Message);
        Assert.True(Interlocked.Read(ref _server.BytesSent) < 64L << 20, $"server wrote {_server.BytesSent} bytes");
    }

    [Fact]
    public async Task ManifestBodyThatNeverArrivesTimesOut()
    {
        _server.Handler = async (path, s, ct) =>
        {
            await RawHttpServer.WriteAsync(s, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100\r\n\r\n{", ct);
            await Task.Delay(Timeout.Infinite, ct);
        };
        using var client = Client(0.5);
        var e = await FailsWithin(TimeSpan.FromSeconds(10), () => client.GetManifestAsync(Image, "latest"));
        Assert.Equal(ErrorKind.Transient, e.Kind);
    }

    [Fact]
    public async Task EndlessChunkedErrorBodyIsReadBoundedAndKeepsTheStatus()
    {
        _server.Handler = async (path, s, ct) =>
        {
            await RawHttpServer.WriteAsync(s, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", ct);
            byte[] chunk = Encoding.ASCII.GetBytes("1000\r\n" + new string('x', 0x1000) + "\r\n");
            while (true)
            {
                await s.WriteAsync(chunk, ct);
                Interlocked.Add(ref _server.BytesSent, 0x1000);
            }
        };
        using var client = Client();
        var e = await FailsWithin(TimeSpan.FromSeconds(20), () => client.GetManifestAsync(Image, "latest"));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.True(Interlocked.Read(ref _server.BytesSent) < 64L << 20, $"server wrote {_server.BytesSent} bytes");
    }

    [Fact]
    public async Task TokenEndpointThatNeverAnswersFailsWithinTheTimeout()
    {
        _server.Handler = async (path, s, ct) =>
        {
            if (path.StartsWith("/token", StringComparison.Ordinal))
                await Task.Delay(Timeout.Infinite, ct); // accepts, reads the request, never answers
            else
                await Challenge(s, ct);
        };
        using var client = Client(0.5);
        var e = await FailsWithin(TimeSpan.FromSeconds(10), () => client.GetManifestAsync(Image, "latest"));
        Assert.Equal(ErrorKind.Transient, e.Kind);
        Assert.Contains("token service", e.Message);
        Assert.DoesNotContain("scope=", e.Message);
    }

    [Fact]
    public async Task NonJsonTokenBodyFailsTyped()
    {
        _server.Handler = async (path, s, ct) =>
        {
            if (path.StartsWith("/token", StringComparison.Ordinal))
            {
                string body = $"<html>token={TokenText}</html>";
                await RawHttpServer.WriteAsync(s, $"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {body.Length}\r\n\r\n{body}", ct);
            }
            else await Challenge(s, ct);
        };
        using var client = Client();
        var e = await FailsWithin(TimeSpan.FromSeconds(10), () => client.GetManifestAsync(Image, "latest"));
        Assert.Equal(ErrorKind.Permanent, e.Kind);
        Assert.Contains("token service", e.Message);
    }

    [Fact]
    public async Task NonJsonManifestFailsTyped()
    {
        _server.Handler = (path, s, ct) => RawHttpServer.WriteAsync(s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 5\r\n\r\nhello", ct);
        using var client = Client();
        var e = await FailsWithin(TimeSpan.FromSeconds(10), () => client.GetManifestAsync(Image, "latest"));
        Assert.Equal(ErrorKind.Permanent, e.Kind);
    }

    private Task Challenge(Stream s, CancellationToken ct) => RawHttpServer.WriteAsync(s,
        $"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{_server.Authority}/token\",service=\"test\"\r\nContent-Length: 0\r\n\r\n", ct);

    // ---- resumed blob downloads (RFC 9110 ranges) ----

    private static readonly byte[] BlobBytes = [.. Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7))];
    private static OciDescriptor BlobDesc => new("application/octet-stream", "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BlobBytes)),
        BlobBytes.Length, new Dictionary<string, string>(), null, null);

    private static string? RangeOf(string head) =>
        head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase))?[6..].Trim();

    /// <summary>Serves the blob honouring <c>Range: bytes=N-</c> (206) when <paramref name="ranges"/>; the first answer is cut after <paramref name="cutFirst"/> bytes.</summary>
    private void ServeBlob(bool ranges, int? cutFirst = null)
    {
        int served = 0;
        _server.Handler = async (path, s, ct) =>
        {
            string head;
            lock (_server.Heads) head = _server.Heads[^1];
            int from = ranges && RangeOf(head) is { } r ? int.Parse(r["bytes=".Length..].TrimEnd('-')) : 0;
            string status = from > 0 ? $"206 Partial Content\r\nContent-Range: bytes {from}-{BlobBytes.Length - 1}/{BlobBytes.Length}" : "200 OK";
            await RawHttpServer.WriteAsync(s, $"HTTP/1.1 {status}\r\nContent-Length: {BlobBytes.Length - from}\r\n\r\n", ct);
            bool cut = Interlocked.Increment(ref served) == 1 && cutFirst is not null;
            await s.WriteAsync(BlobBytes.AsMemory(from, cut ? cutFirst!.Value : BlobBytes.Length - from), ct);
            Interlocked.Add(ref _server.BytesSent, cut ? cutFirst!.Value : BlobBytes.Length - from);
            if (cut) throw new IOException("connection dropped on purpose");
        };
    }

    private string Blobs() => Directory.CreateTempSubdirectory("ma-blob-").FullName;

    [Fact]
    public async Task A_dropped_blob_download_resumes_with_a_range_request_for_the_rest_only()
    {
        ServeBlob(ranges: true, cutFirst: 80_000);
        string dir = Blobs();
        using var client = new RegistryClient(null, new RegistryOptions(MaxAttempts: 2, Timeout: TimeSpan.FromSeconds(5)));
        long fetched = await client.DownloadBlobAsync(Image, BlobDesc, Path.Combine(dir, "blob"));
        Assert.Equal(BlobBytes, File.ReadAllBytes(Path.Combine(dir, "blob")));
        Assert.Equal(BlobBytes.Length, fetched);
        Assert.Equal(BlobBytes.Length, Interlocked.Read(ref _server.BytesSent)); // 80 000 + the remaining 120 000, nothing twice
        Assert.Equal([null, "bytes=80000-"], _server.Heads.Select(RangeOf));
        Assert.False(File.Exists(Path.Combine(dir, "blob.partial")));
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task A_partial_blob_is_kept_after_a_failed_pull_and_never_named_complete()
    {
        ServeBlob(ranges: true, cutFirst: 50_000);
        string dir = Blobs();
        using (var client = new RegistryClient(null, new RegistryOptions(MaxAttempts: 1, Timeout: TimeSpan.FromSeconds(5))))
            await Assert.ThrowsAsync<MicroagentException>(() => client.DownloadBlobAsync(Image, BlobDesc, Path.Combine(dir, "blob")));
        Assert.False(File.Exists(Path.Combine(dir, "blob")));
        Assert.Equal(50_000, new FileInfo(Path.Combine(dir, "blob.partial")).Length);
        using (var client = new RegistryClient(null, new RegistryOptions(MaxAttempts: 1, Timeout: TimeSpan.FromSeconds(5))))
            Assert.Equal(BlobBytes.Length - 50_000, await client.DownloadBlobAsync(Image, BlobDesc, Path.Combine(dir, "blob")));
        Assert.Equal(BlobBytes, File.ReadAllBytes(Path.Combine(dir, "blob")));
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task A_registry_without_ranges_or_a_foreign_partial_file_gives_the_whole_blob_again()
    {
        string dir = Blobs();
        File.WriteAllBytes(Path.Combine(dir, "blob.partial"), BlobBytes[..60_000]);
        ServeBlob(ranges: false); // answers 200 with everything to a Range request
        using (var client = new RegistryClient(null, new RegistryOptions(MaxAttempts: 1, Timeout: TimeSpan.FromSeconds(5))))
            Assert.Equal(BlobBytes.Length, await client.DownloadBlobAsync(Image, BlobDesc, Path.Combine(dir, "blob")));
        Assert.Equal(BlobBytes, File.ReadAllBytes(Path.Combine(dir, "blob")));

        File.Delete(Path.Combine(dir, "blob"));
        File.WriteAllBytes(Path.Combine(dir, "blob.partial"), new byte[60_000]); // not this blob's bytes
        ServeBlob(ranges: true);
        using (var client = new RegistryClient(null, new RegistryOptions(MaxAttempts: 1, Timeout: TimeSpan.FromSeconds(5))))
            await client.DownloadBlobAsync(Image, BlobDesc, Path.Combine(dir, "blob"));
        Assert.Equal(BlobBytes, File.ReadAllBytes(Path.Combine(dir, "blob"))); // the digest caught it; started over once
        Directory.Delete(dir, true);
    }

    /// <summary>HTTP/1.1 on a raw socket: reads one request's head per connection and hands it to <see cref="Handler"/>.</summary>
    private sealed class RawHttpServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _connections = [];
        private readonly Task _accept;
        public long BytesSent;

        public RawHttpServer()
        {
            _listener.Start();
            _accept = AcceptLoop();
        }

        public Func<string, Stream, CancellationToken, Task> Handler { get; set; } = (_, _, _) => Task.CompletedTask;

        /// <summary>Every request head received, in order.</summary>
        public List<string> Heads { get; } = [];

        public string Authority => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public static Task WriteAsync(Stream s, string text, CancellationToken ct) => s.WriteAsync(Encoding.ASCII.GetBytes(text), ct).AsTask();

        private async Task AcceptLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient c;
                try { c = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                lock (_connections) _connections.Add(Serve(c));
            }
        }

        private async Task Serve(TcpClient c)
        {
            using (c)
            {
                try
                {
                    var s = c.GetStream();
                    while (true) // keep-alive: one request after another until the client closes
                    {
                        string? head = await ReadHead(s, _stop.Token);
                        if (head is null) return;
                        lock (Heads) Heads.Add(head);
                        string path = head.Split(' ', 3) is [_, var p, ..] ? p : "/";
                        await Handler(path, s, _stop.Token);
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
            }
        }

        private static async Task<string?> ReadHead(Stream s, CancellationToken ct)
        {
            var sb = new StringBuilder();
            byte[] one = new byte[1];
            while (!sb.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await s.ReadAsync(one, ct) == 0) return null;
                sb.Append((char)one[0]);
                if (sb.Length > 16 << 10) return null;
            }
            return sb.ToString();
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accept;
            Task[] all;
            lock (_connections) all = [.. _connections];
            await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(10));
            _listener.Dispose();
            _stop.Dispose();
        }
    }
}
