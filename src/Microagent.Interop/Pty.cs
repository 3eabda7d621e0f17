using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// Pseudo-terminals: posix_openpt(3), grantpt(3), unlockpt(3), ptsname_r(3) and the window-size ioctls TIOCGWINSZ and
/// TIOCSWINSZ (ioctl_tty(2); numbers from include/uapi/asm-generic/ioctls.h, struct winsize from
/// include/uapi/asm-generic/termios.h). Used by the guest console (docs/ARCHITECTURE.md "Console") and, for the size, by the
/// host terminal.
/// </summary>
internal static unsafe partial class Pty
{
    private const int O_RDWR = 0x2;
    private const int O_NOCTTY = 0x100;
    private const ulong TIOCGWINSZ = 0x5413;
    private const ulong TIOCSWINSZ = 0x5414;

    [StructLayout(LayoutKind.Sequential)]
    private struct WinSize
    {
        public ushort Rows, Cols, XPixel, YPixel;
    }

    [LibraryImport(Libc.Name, EntryPoint = "posix_openpt", SetLastError = true)]
    private static partial int PosixOpenPtRaw(int flags);

    [LibraryImport(Libc.Name, EntryPoint = "grantpt", SetLastError = true)]
    private static partial int GrantPtRaw(int fd);

    [LibraryImport(Libc.Name, EntryPoint = "unlockpt", SetLastError = true)]
    private static partial int UnlockPtRaw(int fd);

    [LibraryImport(Libc.Name, EntryPoint = "ptsname_r", SetLastError = true)]
    private static partial int PtsNameRaw(int fd, byte* buf, nuint len);

    [LibraryImport(Libc.Name, EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlRaw(int fd, ulong request, WinSize* size);

    /// <summary>
    /// A new pseudo-terminal: its master side (owned, close-on-exec, not this process's controlling terminal) and the path of
    /// its slave side (<c>/dev/pts/N</c>), granted and unlocked, with the size <paramref name="rows"/> × <paramref name="cols"/>.
    /// </summary>
    public static (SafeFileDescriptor Master, string SlavePath) Open(int rows, int cols)
    {
        int fd = PosixOpenPtRaw(O_RDWR | O_NOCTTY | FileDescriptors.O_CLOEXEC);
        if (fd < 0) throw new SyscallException("posix_openpt", Libc.LastErrno);
        var master = new SafeFileDescriptor(fd);
        try
        {
            Libc.Check(GrantPtRaw(fd), "grantpt");
            Libc.Check(UnlockPtRaw(fd), "unlockpt");
            byte* buf = stackalloc byte[128];
            int r = PtsNameRaw(fd, buf, 128);
            if (r != 0) throw new SyscallException("ptsname_r", r);
            string path = Marshal.PtrToStringUTF8((nint)buf) ?? throw new SyscallException("ptsname_r", Errno.ENOENT);
            SetSize(master, rows, cols);
            return (master, path);
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }

    /// <summary>TIOCSWINSZ: sets the terminal's size; the kernel sends SIGWINCH to its foreground process group when it changes.</summary>
    public static void SetSize(SafeFileDescriptor fd, int rows, int cols)
    {
        using var lease = new FdLease(fd);
        var ws = new WinSize { Rows = (ushort)rows, Cols = (ushort)cols };
        Libc.Check(IoctlRaw(lease.Fd, TIOCSWINSZ, &ws), "ioctl(TIOCSWINSZ)");
    }

    /// <summary>TIOCGWINSZ on descriptor <paramref name="fd"/> (a terminal): its rows and columns; null when it is not a terminal or reports 0 × 0.</summary>
    public static (int Rows, int Cols)? GetSize(int fd)
    {
        WinSize ws;
        if (IoctlRaw(fd, TIOCGWINSZ, &ws) < 0 || ws.Rows == 0 || ws.Cols == 0) return null;
        return (ws.Rows, ws.Cols);
    }
}
