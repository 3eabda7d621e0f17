using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// Shared pieces of the libc binding. Every P/Invoke in the product lives in this project, one file
/// per syscall family; no other project uses <c>unsafe</c> or <c>DllImport</c>.
/// </summary>
public static partial class Libc
{
    /// <summary>glibc, resolved by the loader (host and guest both use glibc).</summary>
    internal const string Name = "libc";

    /// <summary>Errno values used by callers (Linux x86_64, include/uapi/asm-generic/errno-base.h, errno.h).</summary>
    public static class Errno
    {
        /// <summary>No such file or directory.</summary>
        public const int ENOENT = 2;
        /// <summary>Interrupted system call.</summary>
        public const int EINTR = 4;
        /// <summary>Bad file descriptor.</summary>
        public const int EBADF = 9;
        /// <summary>No child processes.</summary>
        public const int ECHILD = 10;
        /// <summary>Try again.</summary>
        public const int EAGAIN = 11;
        /// <summary>Permission denied.</summary>
        public const int EACCES = 13;
        /// <summary>File exists.</summary>
        public const int EEXIST = 17;
        /// <summary>Not a directory.</summary>
        public const int ENOTDIR = 20;
        /// <summary>Invalid argument.</summary>
        public const int EINVAL = 22;
        /// <summary>Broken pipe.</summary>
        public const int EPIPE = 32;
        /// <summary>Connection reset by peer.</summary>
        public const int ECONNRESET = 104;
        /// <summary>Connection refused.</summary>
        public const int ECONNREFUSED = 111;
    }

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
public sealed class SyscallException : IOException
{
    /// <summary>Creates the exception from a call name and errno.</summary>
    public SyscallException(string call, int errno)
        : base($"{call}: {Libc.Describe(errno)} (errno {errno})") { Call = call; Errno = errno; }

    /// <summary>The failing call.</summary>
    public string Call { get; }

    /// <summary>The errno it set.</summary>
    public int Errno { get; }
}
