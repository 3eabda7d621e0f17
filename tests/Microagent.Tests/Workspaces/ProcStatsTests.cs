using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>The /proc readings behind <c>stats</c> (docs/ARCHITECTURE.md "Stats"), over recorded samples and this process.</summary>
public sealed class ProcStatsTests
{
    // Recorded on a Linux 6.x host from a QEMU of a running workspace: utime 4321 and stime 876 clock ticks.
    private const string QemuStat =
        "41234 (qemu-system-x86) S 41200 41200 41200 0 -1 4194560 120331 0 2 0 4321 876 0 0 20 0 6 0 142994 1577844736 98304 " +
        "18446744073709551615 94585468850176 94585468870057 140737419690496 0 0 0 0 4096 1073745642 0 0 0 17 1 0 0 0 0 0 " +
        "94585468886064 94585468887680 94585875419136 140737419692516 140737419692536 140737419692536 140737419694059 0";

    private const string SmapsRollup = """
        564f9b529000-7fff7d151000 ---p 00000000 00:00 0                          [rollup]
        Rss:              401744 kB
        Pss:              310182 kB
        Pss_Dirty:        300112 kB
        Pss_Anon:          12112 kB
        Pss_File:           9070 kB
        Pss_Shmem:        289000 kB
        Shared_Clean:       1592 kB
        Private_Dirty:    300112 kB
        Swap:                  0 kB
        SwapPss:               0 kB
        """;

    [Fact]
    public void Cpu_ticks_are_fields_14_and_15_of_a_stat_line()
    {
        Assert.Equal((4321L, 876L), ProcStats.ParseCpuTicks(QemuStat));
    }

    [Fact]
    public void A_command_name_with_spaces_and_parentheses_does_not_shift_the_fields()
    {
        string odd = QemuStat.Replace("(qemu-system-x86)", "(a (b) c)", StringComparison.Ordinal);
        Assert.Equal((4321L, 876L), ProcStats.ParseCpuTicks(odd));
        Assert.Null(ProcStats.ParseCpuTicks("41234 (trunc"));
        Assert.Null(ProcStats.ParseCpuTicks("41234 (x) S 1 2"));
    }

    [Fact]
    public void Rss_and_pss_come_from_smaps_rollup_in_bytes()
    {
        Assert.Equal((401744L * 1024, 310182L * 1024), ProcStats.ParseSmapsRollup(SmapsRollup));
        Assert.Equal((0L, 0L), ProcStats.ParseSmapsRollup(""));
    }

    [Theory]
    [InlineData(1000, 1100, 1.0, 100, 100.0)] // one core busy for the whole second
    [InlineData(1000, 1050, 1.0, 100, 50.0)]
    [InlineData(0, 300, 2.0, 100, 150.0)]     // two vCPUs, 1.5 cores on average
    [InlineData(500, 500, 2.0, 100, 0.0)]
    [InlineData(500, 400, 2.0, 100, 0.0)]     // never negative
    [InlineData(0, 100, 0.0, 100, 0.0)]       // no time passed
    [InlineData(0, 2500, 10.0, 250, 100.0)]   // another tick rate
    public void Cpu_percent_is_of_one_core_over_the_window(long before, long after, double seconds, long hz, double expected)
    {
        Assert.Equal(expected, ProcStats.CpuPercent(before, after, TimeSpan.FromSeconds(seconds), hz));
    }

    [Fact]
    public void This_process_reads_with_memory_and_cpu_time()
    {
        var before = ProcStats.Read(Environment.ProcessId, TimeProvider.System)!.Value;
        Assert.True(before.RssBytes > 0);
        Assert.True(before.PssBytes > 0 && before.PssBytes <= before.RssBytes);
        Assert.Equal(before.UserTicks + before.SystemTicks, before.CpuTicks);
        Assert.Null(ProcStats.Read(null, TimeProvider.System));
        Assert.Null(ProcStats.Read(int.MaxValue, TimeProvider.System));
        Assert.True(Microagent.Interop.SystemConfig.ClockTicksPerSecond > 0);
    }
}
