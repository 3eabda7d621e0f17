using System.Text;
using System.Text.Json;
using Microagent.Mediation;

namespace Microagent.Tests.Mediation;

public sealed class MediationMessagesTests
{
    [Fact]
    public async Task Writer_and_reader_round_trip_every_shape_in_snake_case()
    {
        var ms = new MemoryStream();
        using (var w = new NdjsonWriter(ms))
        {
            await w.WriteAsync(new WorkRequest { RequestId = "r1", Task = "add", Payload = JsonDocument.Parse("{\"a\":1}").RootElement });
            await w.WriteAsync(new LifecycleSignal { Signal = Signals.Accepting, RequestId = "r1" });
            await w.WriteAsync(new WorkResult { RequestId = "r1", Status = WorkStatuses.Ok, Output = JsonDocument.Parse("3").RootElement });
            await w.WriteAsync(new ConstraintAck { ConstraintsVersion = "v2" });
        }
        string text = Encoding.UTF8.GetString(ms.ToArray());
        Assert.Equal(4, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("\"request_id\":\"r1\"", text);
        Assert.Contains("\"constraints_version\":\"v2\"", text);
        Assert.DoesNotContain("null", text);

        ms.Position = 0;
        var r = new NdjsonReader(ms);
        Assert.Equal("add", (await r.ReadMessageAsync())!.Request!.Task);
        Assert.Equal(Signals.Accepting, (await r.ReadMessageAsync())!.Signal!.Signal);
        var result = (await r.ReadMessageAsync())!.Result!;
        Assert.Equal(("r1", "ok", 3), (result.RequestId, result.Status, result.Output!.Value.GetInt32()));
        Assert.Equal("v2", (await r.ReadMessageAsync())!.Ack!.ConstraintsVersion);
        Assert.Null(await r.ReadMessageAsync());
    }

    [Fact]
    public void Signals_are_told_from_results_by_shape()
    {
        Assert.NotNull(MediationMessage.Parse("{\"signal\":\"completed\",\"request_id\":\"x\"}").Signal);
        Assert.NotNull(MediationMessage.Parse("{\"request_id\":\"x\",\"status\":\"error\",\"error\":\"boom\"}").Result);
        Assert.NotNull(MediationMessage.Parse("{\"request_id\":\"x\",\"payload\":null}").Request);
        Assert.Equal(["ready", "accepting", "completed", "mediation_broken", "constraints_outdated", "quarantined"], Signals.All);
        Assert.Throws<MediationProtocolException>(() => MediationMessage.Parse("[1]"));
        Assert.Throws<MediationProtocolException>(() => MediationMessage.Parse("{\"other\":1}"));
        Assert.Throws<MediationProtocolException>(() => MediationMessage.Parse("{not json"));
    }

    [Fact]
    public async Task Reader_handles_split_reads_crlf_blank_lines_and_a_final_unterminated_line()
    {
        var r = new NdjsonReader(new TrickleStream(Encoding.UTF8.GetBytes("{\"a\":1}\r\n\n{\"b\":\"é\"}\n{\"c\":3}"), 3), 64);
        Assert.Equal("{\"a\":1}", await r.ReadLineAsync());
        Assert.Equal("{\"b\":\"é\"}", await r.ReadLineAsync());
        Assert.Equal("{\"c\":3}", await r.ReadLineAsync());
        Assert.Null(await r.ReadLineAsync());
    }

    [Fact]
    public async Task An_endless_line_is_a_clear_error_not_unbounded_memory()
    {
        var flood = new TrickleStream(null, 4096); // infinite 'x' without a newline
        var r = new NdjsonReader(flood, 100_000);
        var e = await Assert.ThrowsAsync<MediationProtocolException>(async () => await r.ReadLineAsync());
        Assert.Contains("exceeds 100000 bytes", e.Message);
        Assert.True(flood.Served < 200_000, $"read {flood.Served} bytes");
        // Many lines longer in total than the bound are fine.
        var ok = new NdjsonReader(new MemoryStream(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"k\":\"" + new string('v', 50) + "\"}\n", 1000)))), 100);
        int lines = 0;
        while (await ok.ReadLineAsync() is not null) lines++;
        Assert.Equal(1000, lines);
    }

    [Fact]
    public async Task Writer_never_interleaves_concurrent_lines()
    {
        var ms = new MemoryStream();
        using var w = new NdjsonWriter(ms);
        await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => w.WriteAsync(new WorkResult { RequestId = $"r{i}", Status = "ok" }))));
        ms.Position = 0;
        var r = new NdjsonReader(ms);
        var ids = new HashSet<string>();
        while (await r.ReadMessageAsync() is { } m) ids.Add(m.Result!.RequestId);
        Assert.Equal(200, ids.Count);
    }

    /// <summary>Serves <c>data</c> (or endless 'x') at most <c>chunk</c> bytes per read.</summary>
    private sealed class TrickleStream(byte[]? data, int chunk) : Stream
    {
        private int _pos;
        public long Served { get; private set; }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(count, chunk);
            if (data is null) { buffer.AsSpan(offset, n).Fill((byte)'x'); Served += n; return n; }
            n = Math.Min(n, data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            Served += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
