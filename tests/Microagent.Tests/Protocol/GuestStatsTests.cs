using System.Text.Json;
using Microagent.Protocol;

namespace Microagent.Tests.Protocol;

/// <summary>The guest side of <c>stats</c>: /proc/meminfo and /proc/uptime as the agent reads them, and the wire record.</summary>
public sealed class GuestStatsTests
{
    // Recorded in a 256 MiB workspace (Debian cloud kernel 6.1).
    private const string MemInfo = """
        MemTotal:         233412 kB
        MemFree:          180204 kB
        MemAvailable:     196880 kB
        Buffers:            2012 kB
        Cached:            27676 kB
        SwapCached:            0 kB
        HugePages_Total:       0
        Hugepagesize:       2048 kB
        """;

    [Fact]
    public void Meminfo_and_uptime_become_bytes_and_milliseconds()
    {
        var g = ProcKilobytes.Guest(MemInfo, "12.34 20.01\n");
        Assert.Equal(233412L * 1024, g.MemTotalBytes);
        Assert.Equal(196880L * 1024, g.MemAvailableBytes);
        Assert.Equal(180204L * 1024, g.MemFreeBytes);
        Assert.Equal(12340, g.UptimeMs);
    }

    [Fact]
    public void Keys_match_whole_and_values_without_a_unit_are_counts()
    {
        Assert.Equal(0L, ProcKilobytes.Bytes(MemInfo, "HugePages_Total"));
        Assert.Null(ProcKilobytes.Bytes(MemInfo, "Mem"));        // no prefix match
        Assert.Null(ProcKilobytes.Bytes(MemInfo, "Shmem"));      // absent
        Assert.Null(ProcKilobytes.Bytes("MemTotal: lots kB", "MemTotal"));
        var empty = ProcKilobytes.Guest("", "");
        Assert.Equal((0L, 0L, 0L), (empty.MemTotalBytes, empty.MemAvailableBytes, empty.UptimeMs));
    }

    [Fact]
    public void The_request_and_answer_keep_their_wire_names()
    {
        Assert.Equal("""{"v":1,"type":"guest-stats","eof":false}""",
            JsonSerializer.Serialize(new Request { Type = RequestTypes.GuestStats }, ProtocolJson.Default.Request));
        var r = JsonSerializer.Deserialize("""{"v":1,"type":"guest-stats","guestStats":{"memTotalBytes":10,"memAvailableBytes":4,"memFreeBytes":3,"uptimeMs":7}}""",
            ProtocolJson.Default.Response)!;
        Assert.Equal((10L, 4L, 3L, 7L), (r.GuestStats!.MemTotalBytes, r.GuestStats.MemAvailableBytes, r.GuestStats.MemFreeBytes, r.GuestStats.UptimeMs));
    }
}
