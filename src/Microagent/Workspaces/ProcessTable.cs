using System.Globalization;

namespace Microagent.Workspaces;

/// <summary>Liveness of processes from <c>/proc</c>, robust to pid reuse (start time) and zombies.</summary>
internal static class ProcessTable
{
    /// <summary>Start time of <paramref name="pid"/> (clock ticks since boot, field 22 of /proc/PID/stat); null when gone.</summary>
    public static long? StartTime(int pid) => ReadStat(pid) is { } stat ? stat.StartTime : null;

    /// <summary>Running (not a zombie) and, when <paramref name="startTime"/> is given, the same process.</summary>
    public static bool IsAlive(int? pid, long? startTime = null)
    {
        if (pid is not > 0 || ReadStat(pid.Value) is not { } stat) return false;
        if (stat.State is 'Z' or 'X') return false;
        return startTime is null || stat.StartTime == startTime;
    }

    /// <summary>NUL-separated command line joined with spaces; empty when unreadable.</summary>
    public static string CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    /// <summary>Every pid currently in /proc.</summary>
    public static IEnumerable<int> AllPids()
    {
        foreach (string d in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) yield return pid;
    }

    /// <summary>SIGKILL, ignoring a process that is already gone.</summary>
    public static void Kill(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); p.Kill(); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
    }

    /// <summary>Waits until <paramref name="pid"/> is gone or <paramref name="limit"/> passes; true when gone.</summary>
    public static async Task<bool> WaitForExitAsync(int pid, long? startTime, TimeSpan limit, CancellationToken ct)
    {
        var until = DateTime.UtcNow + limit;
        while (IsAlive(pid, startTime))
        {
            if (DateTime.UtcNow > until) return false;
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
        return true;
    }

    private static (char State, long StartTime)? ReadStat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        int close = text.LastIndexOf(')');
        if (close < 0) return null;
        string[] fields = text[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        if (fields.Length < 20 || !long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out long start)) return null;
        return (fields[0].Length > 0 ? fields[0][0] : '?', start);
    }
}
