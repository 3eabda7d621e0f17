using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>finit_module(2) (x86_64 syscall 313; arch/x86/entry/syscalls/syscall_64.tbl).</summary>
internal static unsafe partial class Modules
{
    private const long SYS_finit_module = 313;

    [LibraryImport(Libc.Name, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall3(long number, long a1, byte* a2, long a3);

    /// <summary>Loads the module in the open file <paramref name="fd"/>; returns 0 or errno (EEXIST: already loaded).</summary>
    public static int FinitModule(SafeHandle fd)
    {
        using var lease = new FdLease(fd);
        byte empty = 0;
        return Syscall3(SYS_finit_module, lease.Fd, &empty, 0) < 0 ? Libc.LastErrno : 0;
    }
}
