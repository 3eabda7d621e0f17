using System.Globalization;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>One reading of a process's CPU time and memory from /proc (proc(5)), at a monotonic time.</summary>
/// <param name="CpuTicks">utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks.</param>
/// <param name="UserTicks">utime.</param>
/// <param name="SystemTicks">stime.</param>
/// <param name="RssBytes"><c>Rss</c> of /proc/PID/smaps_rollup.</param>
/// <param name="PssBytes"><c>Pss</c> of /proc/PID/smaps_rollup.</param>
/// <param name="At">When it was read (<see cref="TimeProvider.GetTimestamp"/>).</param>
internal readonly record struct ProcReading(long CpuTicks, long UserTicks, long SystemTicks, long RssBytes, long PssBytes, long At);

/// <summary>
/// A workspace process's CPU and memory from /proc (docs/ARCHITECTURE.md "Stats"): /proc/PID/stat for user and system time,
/// /proc/PID/smaps_rollup for RSS and PSS. The parsers take the files' text, so recorded samples test them.
/// </summary>
internal static class ProcStats
{
    /// <summary>utime and stime of a /proc/PID/stat line (fields 14 and 15, counted after the parenthesised command name, which may hold spaces and parentheses); null when malformed.</summary>
    public static (long User, long System)? ParseCpuTicks(string stat)
    {
        int close = stat.LastIndexOf(')');
        if (close < 0 || close + 2 > stat.Length) return null;
        string[] fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state), so field N is fields[N - 3].
        if (fields.Length < 13
            || !long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out long user)
            || !long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out long system)) return null;
        return (user, system);
    }

    /// <summary>RSS and PSS of a /proc/PID/smaps_rollup text, in bytes (0 for a missing line).</summary>
    public static (long Rss, long Pss) ParseSmapsRollup(string text) => (ProcKilobytes.Bytes(text, "Rss") ?? 0, ProcKilobytes.Bytes(text, "Pss") ?? 0);

    /// <summary>
    /// CPU percent of one core between two readings: Δticks ÷ ticks-per-second ÷ elapsed seconds × 100. 100 = one core busy for
    /// the whole window; a process with N busy threads reaches N × 100. 0 when no time passed.
    /// </summary>
    public static double CpuPercent(long ticksBefore, long ticksAfter, TimeSpan elapsed, long ticksPerSecond)
    {
        if (elapsed <= TimeSpan.Zero || ticksPerSecond <= 0) return 0;
        double cpuSeconds = Math.Max(0, ticksAfter - ticksBefore) / (double)ticksPerSecond;
        return Math.Round(cpuSeconds / elapsed.TotalSeconds * 100, 1);
    }

    /// <summary>Reads process <paramref name="pid"/> now; null when it is gone or unreadable. smaps_rollup may be missing (old kernels): memory then reads 0.</summary>
    public static ProcReading? Read(int? pid, TimeProvider time)
    {
        if (pid is not > 0) return null;
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        if (ParseCpuTicks(stat) is not { } cpu) return null;
        (long rss, long pss) = (0, 0);
        try { (rss, pss) = ParseSmapsRollup(File.ReadAllText($"/proc/{pid}/smaps_rollup")); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return new ProcReading(cpu.User + cpu.System, cpu.User, cpu.System, rss, pss, time.GetTimestamp());
    }
}
