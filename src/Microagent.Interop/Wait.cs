using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>waitpid(2), prctl(PR_SET_CHILD_SUBREAPER), and decoding of raw wait statuses (bits/waitstatus.h).</summary>
internal static unsafe partial class Wait
{
    private const int PR_SET_CHILD_SUBREAPER = 36;

    [LibraryImport(Libc.Name, EntryPoint = "waitpid", SetLastError = true)]
    private static partial int WaitPidRaw(int pid, int* status, int options);

    [LibraryImport(Libc.Name, EntryPoint = "prctl", SetLastError = true)]
    private static partial int PrctlRaw(int option, nuint a2, nuint a3, nuint a4, nuint a5);

    /// <summary>
    /// Blocks until a child matching <paramref name="pid"/> (-1: any) ends; retries EINTR.
    /// Returns (pid, raw status), or (-errno, 0) on failure (e.g. -ECHILD when there are no children).
    /// </summary>
    public static (int Pid, int Status) WaitPid(int pid, int options = 0)
    {
        int status = 0;
        while (true)
        {
            int r = WaitPidRaw(pid, &status, options);
            if (r >= 0) return (r, status);
            int errno = Libc.LastErrno;
            if (errno != Errno.EINTR) return (-errno, 0);
        }
    }

    /// <summary>Makes orphaned descendants reparent to this process instead of PID 1.</summary>
    public static void SetChildSubreaper() => Libc.Check(PrctlRaw(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)");

    /// <summary>WIFEXITED.</summary>
    public static bool Exited(int status) => (status & 0x7f) == 0;
    /// <summary>WEXITSTATUS.</summary>
    public static int ExitCode(int status) => (status >> 8) & 0xff;
    /// <summary>WIFSIGNALED.</summary>
    public static bool Signaled(int status) => ((sbyte)((status & 0x7f) + 1) >> 1) > 0;
    /// <summary>WTERMSIG.</summary>
    public static int TermSignal(int status) => status & 0x7f;
}
