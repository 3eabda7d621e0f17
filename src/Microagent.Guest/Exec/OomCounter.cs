namespace Microagent.Guest.Exec;

/// <summary>
/// The kernel's count of OOM kills, <c>oom_kill</c> in <c>/proc/vmstat</c> (Linux mm/vmstat.c, since 4.13): read before and after
/// an exec, a rise while the command ran and a SIGKILL ending it mean the OOM killer chose a process of the command
/// (docs/ARCHITECTURE.md "Faults"). Execs running at the same time share the counter, so with several at once a kill is
/// attributed to each one that ended by SIGKILL.
/// </summary>
internal static class OomCounter
{
    /// <summary>The counter file.</summary>
    public const string VmstatPath = "/proc/vmstat";

    /// <summary>The current count; null when the file or the field is absent.</summary>
    public static long? Read(string path = VmstatPath)
    {
        try
        {
            foreach (string line in File.ReadLines(path))
                if (line.StartsWith("oom_kill ", StringComparison.Ordinal) && long.TryParse(line.AsSpan(9), out long n)) return n;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Whether the OOM killer took a process of a command that ended with SIGKILL (directly or as its shell's 137).</summary>
    public static bool ChoseCommand(long? before, long? after, int? signal, int exitCode) =>
        before is { } b && after is { } a && a > b && (signal == 9 || exitCode == 137);
}
