using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Models;
using Microagent.Models.Mediation;

namespace Microagent.Tests.Models.Mediation;

/// <summary>
/// What a hostile guest can send the mediator over a raw socket: oversized and malformed heads, bad chunking, smuggling attempts,
/// forged fields, pipelining, and slow partial input (cut off by the head timeout). Also <see cref="Http1Reader"/> on its own.
/// </summary>
public sealed class HostileRequestTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-mediator-hostile-").FullName;
    private LoopbackHttpServer _upstream = null!;
    private MediatorHarness _h = null!;

    private static readonly HttpLimits Tight = new()
    {
        MaxHeadBytes = 4096, MaxHeaders = 20, MaxBodyBytes = 8192, HeadTimeout = TimeSpan.FromSeconds(2),
        BodyTimeout = TimeSpan.FromSeconds(2), IdleTimeout = TimeSpan.FromSeconds(6),
    };

    public Task InitializeAsync()
    {
        _upstream = new LoopbackHttpServer((req, s, ct) =>
            LoopbackHttpServer.RespondAsync(s, 200, "application/json", $$"""{"target":"{{req.Target}}"}""", ct));
        _h = new MediatorHarness(new ModelMediationSettings { Mode = ModelMediationMode.LocalAllow },
            new TestEndpoints(() => new ModelEndpoint("127.0.0.1", _upstream.Port, "runner-1", null)), _dir, Tight);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _upstream.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private Task<string> Send(string raw, bool halfClose = false) => _h.RawAsync(Encoding.Latin1.GetBytes(raw), TimeSpan.FromSeconds(30), halfClose);

    private static int Status(string response) => int.Parse(response.AsSpan(9, 3));

    [Theory]
    [InlineData("HELLO\r\n\r\n", 400)]
    [InlineData("GET /v1/models HTTP/2.0\r\nHost: x\r\n\r\n", 400)]
    [InlineData("GET http://evil/v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 400)]
    [InlineData("GET /v1/models HTTP/1.1\r\n\r\n", 400)]
    [InlineData("GET /v1/models HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400)]
    [InlineData("GET /v1/models HTTP/1.1\r\nHost : x\r\n\r\n", 400)]
    [InlineData("GET /v1/models HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400)]
    [InlineData("GET /v1/models HTTP/1.1\nHost: x\r\n\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n", 413)]
    [InlineData("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2001\r\n", 413)]
    public async Task Malformed_requests_get_an_error_and_the_connection_is_closed(string raw, int status)
    {
        string response = await Send(raw, halfClose: true);
        Assert.Equal(status, Status(response));
        Assert.Contains("Connection: close", response);
        Assert.Contains("\"error\":{", response);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task An_oversized_head_or_too_many_fields_is_a_431()
    {
        Assert.Equal(431, Status(await Send($"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 5000)}\r\n\r\n")));
        string many = string.Concat(Enumerable.Range(0, 30).Select(i => $"X-F{i}: v\r\n"));
        Assert.Equal(431, Status(await Send($"GET /v1/models HTTP/1.1\r\nHost: x\r\n{many}\r\n")));
        // A head that never ends and keeps growing is cut at the limit, not buffered without end.
        Assert.Equal(431, Status(await Send("GET /v1/models HTTP/1.1\r\nHost: x\r\nX: " + new string('b', 20000))));
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task Forged_fields_never_reach_the_runner()
    {
        string response = await Send("GET /v1/models HTTP/1.1\r\nHost: evil.example\r\nX-Microagent-Workspace: other\r\nX-Microagent-Request-Id: forged\r\n" +
            "Connection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nProxy-Authorization: Basic eA==\r\nForwarded: for=1.2.3.4\r\nUpgrade: h2c\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n");
        Assert.Equal(200, Status(response));
        var seen = Assert.Single(_upstream.Requests);
        Assert.Equal($"127.0.0.1:{_upstream.Port}", seen.Header("Host"));
        Assert.Equal("lab", seen.Header("X-Microagent-Workspace"));
        Assert.NotEqual("forged", seen.Header("X-Microagent-Request-Id"));
        foreach (string gone in new[] { "X-Secret-Hop", "Proxy-Authorization", "Forwarded", "Upgrade", "TE" }) Assert.Null(seen.Header(gone));
        Assert.Equal("yes", seen.Header("X-Kept"));
        Assert.Equal(1, seen.Headers.Count(f => f.Key.Equals("Host", StringComparison.OrdinalIgnoreCase)));
    }

    [Fact]
    public async Task Pipelined_requests_are_answered_in_order_on_one_connection()
    {
        string response = await Send("GET /v1/models?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models?n=2 HTTP/1.1\r\nHost: x\r\n\r\n" +
            "GET /v1/models?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        int a = response.IndexOf("n=1", StringComparison.Ordinal), b = response.IndexOf("n=2", StringComparison.Ordinal), c = response.IndexOf("n=3", StringComparison.Ordinal);
        Assert.True(a > 0 && b > a && c > b, response);
        Assert.Equal(3, response.Split("HTTP/1.1 200").Length - 1);
        Assert.Equal(1, _h.Connections);
    }

    [Fact]
    public async Task Slow_partial_input_is_cut_off_by_the_head_and_body_timeouts()
    {
        foreach (string partial in new[] { "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mod" })
        {
            var clock = Stopwatch.StartNew();
            string response = await Send(partial);
            Assert.Equal(408, Status(response));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        }
        var audit = await _h.AuditAsync(2);
        Assert.All(audit, l => Assert.Contains("\"decision\":\"invalid\"", l));
    }

    [Fact]
    public async Task An_idle_kept_alive_connection_is_closed_quietly()
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _h.Port);
        var clock = Stopwatch.StartNew();
        int n = await client.GetStream().ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, n);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(5), $"closed after {clock.Elapsed}");
    }

    [Fact]
    public async Task Expect_continue_gets_100_before_the_body()
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _h.Port);
        var s = client.GetStream();
        await s.WriteAsync("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"u8.ToArray());
        var buf = new byte[256];
        int n = await s.ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("HTTP/1.1 100 Continue", Encoding.ASCII.GetString(buf, 0, n));
        await s.WriteAsync("{}"u8.ToArray());
        var rest = await new StreamReader(s).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("HTTP/1.1 200", Encoding.ASCII.GetString(buf, 0, n) + rest);
    }

    [Fact]
    public async Task The_reader_parses_pipelined_heads_and_chunked_bodies_from_one_buffer()
    {
        var bytes = Encoding.Latin1.GetBytes("\r\nPOST /a?q=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n" +
            "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        var reader = new Http1Reader(new MemoryStream(bytes), bufferSize: 64);
        var limits = new HttpLimits();
        var first = (await reader.ReadRequestHeadAsync(limits, default))!;
        Assert.Equal(("POST", "/a", 1, true), (first.Method, first.Path, first.Minor, first.KeepAlive));
        var (framing, length) = Http1.RequestFraming(first.Headers, limits);
        Assert.Equal("abcde", Encoding.ASCII.GetString(await reader.ReadBodyAsync(framing, length, limits, default)));
        var second = (await reader.ReadRequestHeadAsync(limits, default))!;
        Assert.Equal(("/b", 0, true), (second.Path, second.Minor, second.KeepAlive));
        Assert.Null(await reader.ReadRequestHeadAsync(limits, default));
    }

    [Fact]
    public async Task The_reader_relays_a_chunked_answer_rechunked_or_decoded()
    {
        byte[] answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n1;x=y\r\n!\r\n0\r\n\r\n"u8.ToArray();
        foreach (bool rechunk in new[] { true, false })
        {
            var reader = new Http1Reader(new MemoryStream(answer));
            var head = await reader.ReadResponseHeadAsync(new HttpLimits(), default);
            var (framing, length) = Http1.ResponseFraming(head, "POST");
            var to = new MemoryStream();
            Assert.Equal(5, await reader.RelayBodyAsync(framing, length, to, new HttpLimits(), rechunk, default));
            Assert.Equal(rechunk ? "4\r\ndata\r\n1\r\n!\r\n0\r\n\r\n" : "data!", Encoding.ASCII.GetString(to.ToArray()));
        }
    }
}
