using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>sysconf(3): the clock-tick rate that /proc/PID/stat's times count in (unistd.h, <c>_SC_CLK_TCK</c> = 2 in glibc's bits/confname.h).</summary>
internal static partial class SystemConfig
{
    private const int SC_CLK_TCK = 2;

    [LibraryImport(Libc.Name, EntryPoint = "sysconf")]
    private static partial long Sysconf(int name);

    /// <summary>Clock ticks per second (USER_HZ; 100 on every Linux x86-64 kernel, which is also the answer when sysconf fails).</summary>
    public static long ClockTicksPerSecond { get; } = Sysconf(SC_CLK_TCK) is > 0 and var n ? n : 100;
}
