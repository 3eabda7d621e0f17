using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// Raw setgroups/setresgid/setresuid system calls. Unlike glibc's wrappers these change only the
/// calling thread's credentials (glibc broadcasts to every thread), which is what a one-shot spawn
/// thread needs. Syscall numbers: arch/x86/entry/syscalls/syscall_64.tbl.
/// </summary>
internal static unsafe partial class Credentials
{
    private const long SYS_setresuid = 117;
    private const long SYS_setresgid = 119;
    private const long SYS_setgroups = 116;

    [LibraryImport(Libc.Name, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall3(long number, long a1, long a2, long a3);

    [LibraryImport(Libc.Name, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, long a1, uint* a2);

    /// <summary>Switches the calling thread (only) to uid/gid/groups for good.</summary>
    public static void SetThreadCredentials(uint uid, uint gid, uint[] groups)
    {
        fixed (uint* g = groups.Length == 0 ? [0u] : groups)
            Libc.Check(Syscall2(SYS_setgroups, groups.Length, g), "setgroups");
        Libc.Check(Syscall3(SYS_setresgid, gid, gid, gid), "setresgid");
        Libc.Check(Syscall3(SYS_setresuid, uid, uid, uid), "setresuid");
    }
}
