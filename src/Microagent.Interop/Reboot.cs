using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>reboot(2) (include/uapi/linux/reboot.h).</summary>
internal static partial class Reboot
{
    /// <summary>LINUX_REBOOT_CMD_POWER_OFF.</summary>
    public const int RB_POWER_OFF = 0x4321fedc;

    [LibraryImport(Libc.Name, EntryPoint = "reboot", SetLastError = true)]
    private static partial int RebootRaw(int cmd);

    /// <summary>Powers the machine off; returns only on failure (errno).</summary>
    public static int PowerOff() => RebootRaw(RB_POWER_OFF) < 0 ? Libc.LastErrno : 0;
}
