using System.Runtime.InteropServices;
using System.Text;
using Microagent.Errors;
using Microagent.Interop;
using Microagent.Workspaces;

namespace Microagent.Cli;

/// <summary>
/// The host terminal side of <c>microagent connect</c> (docs/ARCHITECTURE.md "Console"): raw mode on stdin for the length of the
/// session (restored on every way out this process has: the shell's exit, a detach key, a lost session, Ctrl-C-free
/// cancellation by SIGTERM/SIGHUP, an exception, process exit), the terminal's size at the start and on every SIGWINCH, typed
/// bytes through the detach-key filter to the session, the session's output to stdout.
/// </summary>
internal static class ConsoleTerminal
{
    private const int Stdin = 0, Stdout = 1, Stderr = 2;

    /// <summary>Whether stdin is a terminal (an interactive console needs one).</summary>
    public static bool Available => Terminal.IsTerminal(Stdin);

    /// <summary>The terminal's size (stdout's, else stdin's; 24 × 80 when neither says) and its TERM.</summary>
    public static ConsoleOptions Options() => (Pty.GetSize(Stdout) ?? Pty.GetSize(Stdin)) is { } s
        ? new ConsoleOptions { Rows = s.Rows, Cols = s.Cols, Term = Term() }
        : new ConsoleOptions { Term = Term() };

    private static string? Term() => Environment.GetEnvironmentVariable("TERM") is { Length: > 0 and <= 64 } t && t.All(c => c is >= '!' and <= '~') ? t : null;

    /// <summary>Runs the session until the shell exits (its end), a detach key (null) or the session is lost (an error).</summary>
    public static async Task<ConsoleEnd?> RunAsync(WorkspaceConsole session, CancellationToken ct)
    {
        WriteNote($"connected to {session.Workspace} (detach: {ConsoleDetachKeys.Help})");
        var detached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (wakeRead, wakeWrite) = FileDescriptors.Pipe(FileDescriptors.O_CLOEXEC | FileDescriptors.O_NONBLOCK);
        using (wakeRead)
        using (wakeWrite)
        {
            using var raw = Terminal.EnterRaw(Stdin);
            EventHandler restore = (_, _) => raw.Dispose();
            AppDomain.CurrentDomain.ProcessExit += restore;
            try
            {
                using var winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, signal =>
                {
                    if (Pty.GetSize(Stdin) is { } size) _ = ResizeAsync(session, size.Rows, size.Cols);
                });
                var input = new Thread(() => PumpInput(session, wakeRead, detached), 256 * 1024) { IsBackground = true, Name = "console-input" };
                input.Start();
                Task output = PumpOutputAsync(session);
                Task cancelled = Task.Delay(Timeout.Infinite, ct);
                Task first = await Task.WhenAny(session.Completion, detached.Task, cancelled).ConfigureAwait(false);
                try { FileDescriptors.WriteAll(wakeWrite, [1]); } catch (IOException) { }
                await Task.Run(input.Join).ConfigureAwait(false);
                if (first == session.Completion)
                {
                    await output.ConfigureAwait(false);
                    var end = await session.Completion.ConfigureAwait(false);
                    raw.Dispose();
                    if (!end.ShellExited)
                        throw MicroagentException.Transient($"the console session of '{session.Workspace}' was closed (severed, or the VM stopped)",
                            $"see `microagent status {session.Workspace}`");
                    WriteNote($"the shell exited with {end.ExitCode}");
                    return end;
                }
                ct.ThrowIfCancellationRequested();
                raw.Dispose();
                WriteNote($"detached from {session.Workspace} (the workspace keeps running)");
                return null;
            }
            finally
            {
                raw.Dispose();
                AppDomain.CurrentDomain.ProcessExit -= restore;
            }
        }
    }

    private static async Task ResizeAsync(WorkspaceConsole session, int rows, int cols)
    {
        try { await session.ResizeAsync(rows, cols).ConfigureAwait(false); }
        catch (MicroagentException) { } // the session ended; its completion says how
    }

    /// <summary>Typed bytes → the detach filter → the session, until a detach key, the wake pipe, end of input or a lost session.</summary>
    private static void PumpInput(WorkspaceConsole session, SafeFileDescriptor wake, TaskCompletionSource detached)
    {
        using var stdin = new SafeFileDescriptor(Stdin, ownsHandle: false);
        var keys = new ConsoleDetachKeys();
        var forward = new List<byte>(4096);
        var chunk = new byte[4096];
        Span<short> revents = stackalloc short[2];
        try
        {
            while (!session.Completion.IsCompleted)
            {
                Poll.WaitReadable([stdin, wake], revents, -1);
                if (revents[1] != 0) return;
                if (revents[0] == 0) continue;
                int n = FileDescriptors.Read(stdin, chunk);
                if (n == 0) { detached.TrySetResult(); return; } // the terminal went away: nothing more can be typed
                forward.Clear();
                bool detach = keys.Filter(chunk.AsSpan(0, n), forward);
                if (forward.Count > 0) session.WriteAsync(forward.ToArray()).GetAwaiter().GetResult();
                if (detach) { detached.TrySetResult(); return; }
            }
        }
        catch (Exception e) when (e is IOException or MicroagentException or ObjectDisposedException)
        {
            // The session ended under us (its completion says how), or the terminal hung up.
            if (!session.Completion.IsCompleted) detached.TrySetResult();
        }
    }

    private static async Task PumpOutputAsync(WorkspaceConsole session)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await session.Output.ReadAsync(buffer).ConfigureAwait(false)) > 0) WriteStdout(buffer.AsSpan(0, n));
        }
        catch (IOException) { } // stdout went away
    }

    /// <summary>
    /// Writes to descriptor 1 as it is. Not through <see cref="Console"/>: its streams set the terminal up on first write (they
    /// send the keypad-transmit sequence and take over terminal signals), which a console must not have.
    /// </summary>
    public static void WriteStdout(ReadOnlySpan<byte> bytes)
    {
        using var stdout = new SafeFileDescriptor(Stdout, ownsHandle: false);
        FileDescriptors.WriteAll(stdout, bytes);
    }

    /// <summary>A note of ours on stderr, on a line of its own (in raw mode a newline does not return the carriage).</summary>
    private static void WriteNote(string text)
    {
        try
        {
            using var err = new SafeFileDescriptor(Stderr, ownsHandle: false);
            FileDescriptors.WriteAll(err, Encoding.UTF8.GetBytes($"\r\nmicroagent: {text}\r\n"));
        }
        catch (IOException) { }
    }
}
