namespace Microagent.Interop;

/// <summary>
/// errno values used by the product, in one place (Linux x86_64: include/uapi/asm-generic/errno-base.h and
/// include/uapi/asm-generic/errno.h). Callers compare against these, never against literals.
/// </summary>
internal static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such file or directory.</summary>
    public const int ENOENT = 2;
    /// <summary>No such process.</summary>
    public const int ESRCH = 3;
    /// <summary>Interrupted system call.</summary>
    public const int EINTR = 4;
    /// <summary>I/O error (a pseudo-terminal's master reads it once every slave descriptor is closed).</summary>
    public const int EIO = 5;
    /// <summary>Bad file descriptor.</summary>
    public const int EBADF = 9;
    /// <summary>No child processes.</summary>
    public const int ECHILD = 10;
    /// <summary>Try again (also EWOULDBLOCK).</summary>
    public const int EAGAIN = 11;
    /// <summary>Permission denied.</summary>
    public const int EACCES = 13;
    /// <summary>Device or resource busy.</summary>
    public const int EBUSY = 16;
    /// <summary>File exists.</summary>
    public const int EEXIST = 17;
    /// <summary>Not a directory.</summary>
    public const int ENOTDIR = 20;
    /// <summary>Invalid argument.</summary>
    public const int EINVAL = 22;
    /// <summary>Inappropriate ioctl for device (not a terminal).</summary>
    public const int ENOTTY = 25;
    /// <summary>No space left on device.</summary>
    public const int ENOSPC = 28;
    /// <summary>Broken pipe.</summary>
    public const int EPIPE = 32;
    /// <summary>Function not implemented (a system call this kernel, or its seccomp filter, does not offer).</summary>
    public const int ENOSYS = 38;
    /// <summary>Too many levels of symbolic links (also: openat2 RESOLVE_NO_MAGICLINKS met a /proc magic link).</summary>
    public const int ELOOP = 40;
    /// <summary>Operation not supported (the filesystem has no xattrs in that namespace).</summary>
    public const int EOPNOTSUPP = 95;
    /// <summary>Connection reset by peer.</summary>
    public const int ECONNRESET = 104;
    /// <summary>Transport endpoint is not connected.</summary>
    public const int ENOTCONN = 107;
    /// <summary>Connection refused.</summary>
    public const int ECONNREFUSED = 111;
}
