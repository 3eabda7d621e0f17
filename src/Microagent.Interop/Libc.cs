using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// Shared pieces of the libc binding. Every P/Invoke in the product lives in this project, one file
/// per syscall family; no other project uses <c>unsafe</c> or <c>DllImport</c>.
/// </summary>
internal static partial class Libc
{
    /// <summary>glibc, resolved by the loader (host and guest both use glibc).</summary>
    internal const string Name = "libc";

    /// <summary>The calling thread's errno after a failed call (set by <c>SetLastError = true</c>).</summary>
    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>Text for an errno value (strerror).</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>Throws <see cref="SyscallException"/> when <paramref name="result"/> is negative.</summary>
    public static long Check(long result, string call)
    {
        if (result < 0) throw new SyscallException(call, LastErrno);
        return result;
    }
}

/// <summary>A system call failed; carries the call's name and errno.</summary>
internal sealed class SyscallException : IOException
{
    /// <summary>Creates the exception from a call name and errno.</summary>
    public SyscallException(string call, int errno)
        : base($"{call}: {Libc.Describe(errno)} (errno {errno})") { Call = call; Errno = errno; }

    /// <summary>The failing call.</summary>
    public string Call { get; }

    /// <summary>The errno it set.</summary>
    public int Errno { get; }
}
