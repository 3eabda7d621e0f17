using Microagent.Networking;

namespace Microagent.Tests.Networking;

public sealed class EgressAuditTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-audit-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Records_are_json_lines_in_a_0600_file_and_read_back()
    {
        string path = Path.Combine(_dir, "egress.jsonl");
        var audit = new EgressAudit(path);
        var t = DateTimeOffset.UtcNow;
        audit.Write(new EgressRecord { Time = t, Kind = "connect", Verdict = "refused", Rule = "inside:loopback", Ip = "127.0.0.1", Port = 22 });
        audit.Write(new EgressRecord { Time = t, Kind = "connect", Verdict = "allowed", Rule = "default-public", Name = "example.com", Ip = "93.184.215.14", Port = 443, BytesOut = 10, BytesIn = 20, DurationMs = 5 });
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        string[] lines = File.ReadAllLines(path);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("{\"time\":", lines[0]);
        Assert.DoesNotContain("\"name\"", lines[0]);
        var read = new List<EgressRecord>();
        await foreach (var r in EgressAudit.ReadAsync(path, follow: false)) read.Add(r);
        Assert.Equal(("inside:loopback", "example.com", 20L), (read[0].Rule, read[1].Name, read[1].BytesIn));
    }

    [Fact]
    public async Task Follow_yields_records_written_later()
    {
        string path = Path.Combine(_dir, "egress.jsonl");
        var audit = new EgressAudit(path);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var e = EgressAudit.ReadAsync(path, follow: true, ct: cts.Token).GetAsyncEnumerator(cts.Token);
        var next = e.MoveNextAsync().AsTask();
        audit.Write(new EgressRecord { Kind = "dns", Verdict = "allowed", Rule = "default-name", Name = "late.example" });
        Assert.True(await next);
        Assert.Equal("late.example", e.Current.Name);
    }

    [Fact]
    public async Task A_missing_file_is_no_records()
    {
        await foreach (var _ in EgressAudit.ReadAsync(Path.Combine(_dir, "none.jsonl"), follow: false)) Assert.Fail("a record from nowhere");
    }
}
