using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// isatty(3), tcgetattr(3) and tcsetattr(3) (termios(3); struct termios and flag values from glibc's
/// bits/termios-struct.h and bits/termios-c_lflag.h, the same on x86_64 and aarch64).
/// </summary>
internal static unsafe partial class Terminal
{
    private const uint ISIG = 0x1;    // 0000001: INTR, QUIT, SUSP generate signals
    private const uint ICANON = 0x2;  // 0000002: line-at-a-time input with the kernel's line editing
    private const uint ECHO = 0x8;    // 0000010: echo input characters
    private const uint ECHONL = 0x40; // 0000100: echo NL even when ECHO is off
    private const int VTIME = 5;
    private const int VMIN = 6;
    private const int NCCS = 32;
    private const int TCSANOW = 0;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Termios
    {
        public uint IFlag, OFlag, CFlag, LFlag;
        public byte Line;
        public fixed byte Cc[NCCS];
        public uint ISpeed, OSpeed;
    }

    [LibraryImport(Libc.Name, EntryPoint = "cfmakeraw")]
    private static partial void CfMakeRaw(Termios* termios);

    [LibraryImport(Libc.Name, EntryPoint = "isatty", SetLastError = true)]
    private static partial int IsAttyRaw(int fd);

    [LibraryImport(Libc.Name, EntryPoint = "tcgetattr", SetLastError = true)]
    private static partial int TcGetAttrRaw(int fd, Termios* termios);

    [LibraryImport(Libc.Name, EntryPoint = "tcsetattr", SetLastError = true)]
    private static partial int TcSetAttrRaw(int fd, int optionalActions, Termios* termios);

    /// <summary>Whether descriptor <paramref name="fd"/> refers to a terminal.</summary>
    public static bool IsTerminal(int fd) => IsAttyRaw(fd) == 1;

    /// <summary>
    /// Switches the terminal on <paramref name="fd"/> to byte-at-a-time input without echo and without signal keys
    /// (ECHO, ECHONL, ICANON and ISIG off; VMIN 1, VTIME 0), so that nothing typed from now on is shown and Ctrl-C arrives
    /// as a byte. Disposing the returned mode restores the settings saved here. Throws <see cref="SyscallException"/>
    /// (ENOTTY) when <paramref name="fd"/> is not a terminal.
    /// </summary>
    public static TerminalMode EnterSecretInput(int fd)
    {
        Termios saved;
        Libc.Check(TcGetAttrRaw(fd, &saved), "tcgetattr");
        Termios raw = saved;
        raw.LFlag &= ~(ECHO | ECHONL | ICANON | ISIG);
        raw.Cc[VMIN] = 1;
        raw.Cc[VTIME] = 0;
        Libc.Check(TcSetAttrRaw(fd, TCSANOW, &raw), "tcsetattr");
        return new TerminalMode(fd, saved);
    }

    /// <summary>
    /// Switches the terminal on <paramref name="fd"/> to raw mode (cfmakeraw(3): no echo, no line editing, no signal keys, no
    /// output processing, 8-bit bytes), so every byte typed goes to the program as it is and every byte written appears as it
    /// is: what a console to another machine's terminal needs. Disposing the returned mode restores the settings saved here.
    /// Throws <see cref="SyscallException"/> (ENOTTY) when <paramref name="fd"/> is not a terminal.
    /// </summary>
    public static TerminalMode EnterRaw(int fd)
    {
        Termios saved;
        Libc.Check(TcGetAttrRaw(fd, &saved), "tcgetattr");
        Termios raw = saved;
        CfMakeRaw(&raw);
        raw.Cc[VMIN] = 1;
        raw.Cc[VTIME] = 0;
        Libc.Check(TcSetAttrRaw(fd, TCSANOW, &raw), "tcsetattr");
        return new TerminalMode(fd, saved);
    }

    // Best effort: a terminal that hung up meanwhile cannot be restored, and there is nothing left to protect.
    internal static void Restore(int fd, Termios saved) => TcSetAttrRaw(fd, TCSANOW, &saved);
}

/// <summary>Terminal settings saved by <see cref="Terminal.EnterSecretInput"/> or <see cref="Terminal.EnterRaw"/>; disposing puts them back (once).</summary>
internal sealed class TerminalMode : IDisposable
{
    private readonly int _fd;
    private readonly Terminal.Termios _saved;
    private int _restored;

    internal TerminalMode(int fd, Terminal.Termios saved) { _fd = fd; _saved = saved; }

    /// <summary>Restores the saved settings (best effort: a terminal that hung up is left as it is).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _restored, 1) == 0) Terminal.Restore(_fd, _saved);
    }
}
