using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>clock_settime(2) on CLOCK_REALTIME (include/uapi/linux/time.h; struct timespec on x86-64: two 64-bit fields).</summary>
internal static partial class Clock
{
    private const int CLOCK_REALTIME = 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Libc.Name, EntryPoint = "clock_settime", SetLastError = true)]
    private static partial int ClockSetTime(int clock, in Timespec value);

    /// <summary>Sets the system wall clock to <paramref name="unixNanoseconds"/> since the Unix epoch (needs CAP_SYS_TIME); throws <see cref="SyscallException"/>.</summary>
    public static void SetRealtime(long unixNanoseconds)
    {
        if (unixNanoseconds < 0) throw new ArgumentOutOfRangeException(nameof(unixNanoseconds), "before the Unix epoch");
        var ts = new Timespec { Seconds = unixNanoseconds / 1_000_000_000, Nanoseconds = unixNanoseconds % 1_000_000_000 };
        Libc.Check(ClockSetTime(CLOCK_REALTIME, ts), "clock_settime");
    }
}
