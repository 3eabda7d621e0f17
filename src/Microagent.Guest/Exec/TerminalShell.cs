using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Exec;

/// <summary>
/// The shell of one console session (docs/ARCHITECTURE.md "Console"): a login shell started as the leader of its own session
/// on a new pseudo-terminal, the terminal's master side held here. Invariant: after <see cref="Dispose"/> the master is
/// closed (the kernel hangs the terminal up) and the shell's session has been sent SIGHUP.
/// </summary>
internal sealed class TerminalShell : IDisposable
{
    private int _disposed;

    private TerminalShell(SafeFileDescriptor master, int pid, Task<int> exit, string path)
    {
        Master = master;
        Pid = pid;
        Exit = exit;
        Path = path;
    }

    /// <summary>The terminal's master side: the shell's output is read from it, the host's input written to it.</summary>
    public SafeFileDescriptor Master { get; }

    /// <summary>The shell's pid (also its session and process group id).</summary>
    public int Pid { get; }

    /// <summary>The shell's raw wait status once it ends.</summary>
    public Task<int> Exit { get; }

    /// <summary>The shell that runs.</summary>
    public string Path { get; }

    /// <summary>
    /// Starts the shell of <paramref name="request"/> (its size checked by the caller) through <paramref name="waiter"/>.
    /// Throws <see cref="ExecStartException"/> when the shell, user or working directory is not usable.
    /// </summary>
    public static TerminalShell Start(ConsoleRequest request, IChildWaiter waiter, string etc = "/etc")
    {
        UserSpec? user = string.IsNullOrEmpty(request.User) ? null : UserSpec.Resolve(request.User, etc);
        string cwd = string.IsNullOrEmpty(request.Cwd) ? "/" : request.Cwd;
        if (!System.IO.Path.IsPathRooted(cwd) || !Directory.Exists(cwd)) throw new ExecStartException($"cwd '{cwd}' does not exist or is not a directory");
        string shell = ResolveShell(request.Shell);
        string term = string.IsNullOrEmpty(request.Term) ? ConsoleInfo.DefaultTerm : request.Term;
        string[] env = ExecEngine.MergeEnvironment([.. request.Env ?? [], "TERM=" + term, "SHELL=" + shell], user?.Home);
        // argv[0] with a leading '-' makes it a login shell (as login(1) and sshd start one): /etc/profile sets PATH and the prompt.
        string[] argv = ["-" + System.IO.Path.GetFileName(shell)];

        (SafeFileDescriptor master, string slave) = Pty.Open(request.Rows, request.Cols);
        int spawnErrno = 0;
        (int pid, Task<int>? exit) = waiter.Start(() =>
        {
            int r = ExecEngine.SpawnAs(user, () =>
            {
                int e = Spawn.StartOnTerminal(shell, argv, env, cwd, slave, out int child);
                return e == 0 ? child : -e;
            });
            if (r < 0) spawnErrno = -r;
            return r;
        });
        if (exit is null)
        {
            master.Dispose();
            throw new ExecStartException($"cannot start the shell '{shell}': {Libc.Describe(spawnErrno)}");
        }
        return new TerminalShell(master, pid, exit, shell);
    }

    /// <summary>The requested shell when given (it must exist and be executable); otherwise the first of <see cref="ConsoleInfo.FallbackShells"/> the image has.</summary>
    public static string ResolveShell(string? requested, Func<string, bool>? usable = null)
    {
        usable ??= p => File.Exists(p) && Spawn.CheckExecutable(p) == 0;
        if (!string.IsNullOrEmpty(requested))
        {
            if (!System.IO.Path.IsPathRooted(requested)) throw new ExecStartException($"the shell '{requested}' is not an absolute path");
            return usable(requested) ? requested : throw new ExecStartException($"the shell '{requested}' does not exist or is not executable", 127);
        }
        foreach (string candidate in ConsoleInfo.FallbackShells)
            if (usable(candidate)) return candidate;
        throw new ExecStartException($"the image has no shell ({string.Join(", ", ConsoleInfo.FallbackShells)})", 127);
    }

    /// <summary>Writes typed bytes to the terminal (the shell reads them as input).</summary>
    public void Write(ReadOnlySpan<byte> data) => FileDescriptors.WriteAll(Master, data);

    /// <summary>Sets the terminal's size; the kernel sends SIGWINCH to the foreground job.</summary>
    public void Resize(int rows, int cols) => Pty.SetSize(Master, rows, cols);

    /// <summary>Hangs the session up: SIGHUP to its process group now, SIGKILL after <see cref="ConsoleInfo.HangupGraceMs"/> unless the shell has exited.</summary>
    public void HangUp()
    {
        Signals.Kill(-Pid, Signals.SIGHUP);
        _ = Task.Run(async () =>
        {
            if (await Task.WhenAny(Exit, Task.Delay(ConsoleInfo.HangupGraceMs)).ConfigureAwait(false) != Exit) Signals.Kill(-Pid, Signals.SIGKILL);
        });
    }

    /// <summary>The exec-style outcome of a wait status.</summary>
    public static ExecResult ResultOf(int status, long durationMs) => Wait.Exited(status)
        ? new ExecResult { Status = ExecStatuses.Exited, ExitCode = Wait.ExitCode(status), DurationMs = durationMs }
        : new ExecResult { Status = ExecStatuses.Signaled, Signal = Wait.TermSignal(status), ExitCode = 128 + Wait.TermSignal(status), DurationMs = durationMs };

    /// <summary>Closes the master (the terminal hangs up) and sends the session SIGHUP when it still runs.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (!Exit.IsCompleted) HangUp();
        Master.Dispose();
    }
}
