using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>kill(2) and signal numbers (x86_64, include/uapi/asm-generic/signal.h).</summary>
internal static partial class Signals
{
    /// <summary>SIGHUP (the terminal hung up).</summary>
    public const int SIGHUP = 1;
    /// <summary>SIGKILL.</summary>
    public const int SIGKILL = 9;
    /// <summary>SIGTERM.</summary>
    public const int SIGTERM = 15;

    [LibraryImport(Libc.Name, EntryPoint = "kill", SetLastError = true)]
    private static partial int KillRaw(int pid, int sig);

    /// <summary>kill(2); returns 0 or errno. Negative pid = process group; -1 = every process we may signal.</summary>
    public static int Kill(int pid, int sig) => KillRaw(pid, sig) < 0 ? Libc.LastErrno : 0;
}
