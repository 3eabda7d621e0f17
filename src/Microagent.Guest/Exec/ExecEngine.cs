using System.Diagnostics;
using System.Threading.Channels;
using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Exec;

/// <summary>
/// Structured exec (docs/ARCHITECTURE.md "Host-guest protocol"): argv run directly with posix_spawn in a new
/// session, stdin fed from inline bytes or a stream, stdout/stderr captured or streamed, timeout kills
/// the whole process group.
/// </summary>
internal sealed class ExecEngine
{
    /// <summary>Environment every exec starts from; request entries replace entries with the same key.</summary>
    public static readonly string[] DefaultEnvironment =
    [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/root",
    ];

    /// <summary>Per-stream capture cap in single mode, so the result always fits in one frame (base64 grows 4/3).</summary>
    public const long SingleModeMaxBytes = 5 * 1024 * 1024;

    private readonly IChildWaiter _waiter;
    private readonly string _etc;

    /// <summary>Creates the engine; <paramref name="etc"/> holds passwd and group.</summary>
    public ExecEngine(IChildWaiter waiter, string etc = "/etc")
    {
        _waiter = waiter;
        _etc = etc;
    }

    /// <summary>
    /// Runs one exec to completion. <paramref name="stdinStream"/> supplies stdin when the request
    /// streams it (completion = end of file). <paramref name="onChunk"/> receives output in stream mode;
    /// when it throws, the process group is killed and output is dropped. <paramref name="ct"/> kills the process group.
    /// </summary>
    public async Task<ExecResult> RunAsync(ExecRequest request, ChannelReader<byte[]>? stdinStream = null,
        Func<bool, byte[], ValueTask>? onChunk = null, CancellationToken ct = default)
    {
        if (request.Argv.Length == 0 || string.IsNullOrEmpty(request.Argv[0]))
            return Failed(127, "argv is empty");
        bool stream = request.Mode == ExecModes.Stream;

        UserSpec? user = null;
        string cwd = string.IsNullOrEmpty(request.Cwd) ? "/" : request.Cwd;
        string path;
        string[] env;
        try
        {
            if (!string.IsNullOrEmpty(request.User)) user = UserSpec.Resolve(request.User, _etc);
            env = MergeEnvironment(request.Env, user?.Home);
            if (!Path.IsPathRooted(cwd)) throw new ExecStartException($"cwd '{cwd}' is not absolute");
            if (!Directory.Exists(cwd)) throw new ExecStartException($"cwd '{cwd}' does not exist or is not a directory");
            path = ResolveExecutable(request.Argv[0], Lookup(env, "PATH"), cwd);
        }
        catch (ExecStartException e)
        {
            return Failed(e.ExitCode, e.Message);
        }

        (SafeFileDescriptor inR, SafeFileDescriptor inW) = FileDescriptors.Pipe();
        (SafeFileDescriptor outR, SafeFileDescriptor outW) = FileDescriptors.Pipe();
        (SafeFileDescriptor errR, SafeFileDescriptor errW) = FileDescriptors.Pipe();
        int spawnErrno = 0;
        (int pid, Task<int>? exit) = (-1, null);
        try
        {
            (pid, exit) = _waiter.Start(() =>
            {
                int r = SpawnAs(user, () =>
                {
                    int e = Spawn.Start(path, request.Argv, env, cwd, inR, outW, errW, out int child);
                    return e == 0 ? child : -e;
                });
                if (r < 0) spawnErrno = -r;
                return r;
            });
        }
        catch (SyscallException e)
        {
            spawnErrno = e.Errno;
        }
        finally
        {
            inR.Dispose();
            outW.Dispose();
            errW.Dispose();
        }
        if (exit is null)
        {
            inW.Dispose();
            outR.Dispose();
            errR.Dispose();
            int code = spawnErrno is Errno.ENOENT or Errno.ENOTDIR ? 127 : 126;
            return Failed(code, $"cannot execute '{path}': {Libc.Describe(spawnErrno)}");
        }
        var clock = Stopwatch.StartNew();
        long? oomBefore = OomCounter.Read();

        long limit = request.MaxOutputBytes is > 0 ? request.MaxOutputBytes.Value : long.MaxValue;
        if (!stream) limit = Math.Min(limit, SingleModeMaxBytes);
        var pump = new OutputPump(outR, errR, limit, stream);
        pump.Start();

        using var stdinStop = new CancellationTokenSource();
        ChannelReader<byte[]>? stdin = request.StdinStream ? stdinStream : InlineStdin(request.Stdin);
        if (stdin is null) inW.Dispose();
        else new Thread(() => FeedStdin(inW, stdin, stdinStop.Token), 128 * 1024) { IsBackground = true, Name = "exec-stdin" }.Start();

        using var killOnCancel = ct.Register(() => Signals.Kill(-pid, Signals.SIGKILL));
        Task forward = stream ? ForwardAsync(pump, onChunk, pid) : Task.CompletedTask;

        bool timedOut = false;
        int status;
        if (request.TimeoutMs is > 0)
        {
            try { status = await exit.WaitAsync(TimeSpan.FromMilliseconds(request.TimeoutMs.Value)).ConfigureAwait(false); }
            catch (TimeoutException)
            {
                timedOut = true;
                Signals.Kill(-pid, Signals.SIGKILL);
                status = await exit.ConfigureAwait(false);
            }
        }
        else status = await exit.ConfigureAwait(false);
        long durationMs = clock.ElapsedMilliseconds;

        pump.NotifyExited();
        await pump.Completion.ConfigureAwait(false);
        await forward.ConfigureAwait(false);
        stdinStop.Cancel();

        var result = new ExecResult
        {
            DurationMs = durationMs,
            Stdout = pump.Stdout,
            Stderr = pump.Stderr,
            StdoutTruncated = pump.StdoutTruncated,
            StderrTruncated = pump.StderrTruncated,
        };
        if (timedOut)
        {
            result.Status = ExecStatuses.TimedOut;
            result.ExitCode = 124;
            result.Signal = Signals.SIGKILL;
        }
        else if (Wait.Exited(status))
        {
            result.Status = ExecStatuses.Exited;
            result.ExitCode = Wait.ExitCode(status);
        }
        else
        {
            result.Status = ExecStatuses.Signaled;
            result.Signal = Wait.TermSignal(status);
            result.ExitCode = 128 + result.Signal.Value;
        }
        if (!timedOut && OomCounter.ChoseCommand(oomBefore, OomCounter.Read(), result.Signal, result.ExitCode))
        {
            result.OomKilled = true;
            result.Note = "the guest kernel's OOM killer chose this command (the guest ran out of memory); the workspace is still running";
        }
        return result;
    }

    private static async Task ForwardAsync(OutputPump pump, Func<bool, byte[], ValueTask>? onChunk, int pid)
    {
        ChannelReader<(bool IsStderr, byte[] Data)> chunks = pump.Chunks!;
        try
        {
            await foreach ((bool isStderr, byte[] data) in chunks.ReadAllAsync().ConfigureAwait(false))
                if (onChunk is not null) await onChunk(isStderr, data).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.Error($"exec: output receiver failed ({e.Message}); killing process group {pid}");
            Signals.Kill(-pid, Signals.SIGKILL);
            pump.Abandon();
        }
    }

    private static ChannelReader<byte[]>? InlineStdin(byte[]? data)
    {
        if (data is null || data.Length == 0) return null;
        var ch = Channel.CreateUnbounded<byte[]>();
        ch.Writer.TryWrite(data);
        ch.Writer.TryComplete();
        return ch.Reader;
    }

    private static void FeedStdin(SafeFileDescriptor fd, ChannelReader<byte[]> source, CancellationToken stop)
    {
        bool broken = false;
        try
        {
            while (source.WaitToReadAsync(stop).AsTask().GetAwaiter().GetResult())
            {
                while (source.TryRead(out byte[]? data))
                {
                    if (broken) continue;
                    try { FileDescriptors.WriteAll(fd, data); }
                    catch (SyscallException) { broken = true; } // EPIPE: the reader is gone; keep consuming
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) { Log.Error($"exec stdin: {e.Message}"); }
        finally { fd.Dispose(); }
    }

    /// <summary>
    /// Runs <paramref name="spawn"/> with the given credentials: Linux credentials are per thread at the
    /// syscall level and posix_spawn's child inherits the calling thread's, so a one-shot thread drops
    /// privileges for good with raw syscalls, spawns, and exits.
    /// </summary>
    internal static int SpawnAs(UserSpec? user, Func<int> spawn)
    {
        if (user is null) return spawn();
        int result = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Credentials.SetThreadCredentials(user.Uid, user.Gid, user.Groups);
                result = spawn();
            }
            catch (Exception e) { failure = e; }
        }, 256 * 1024) { Name = "spawn-as-user" };
        thread.Start();
        thread.Join();
        if (failure is SyscallException se) return -se.Errno;
        if (failure is not null) throw failure;
        return result;
    }

    /// <summary>Default environment with <paramref name="overrides"/> (KEY=VALUE) replacing same-key entries.</summary>
    public static string[] MergeEnvironment(string[]? overrides, string? home = null)
    {
        var merged = new List<string>(DefaultEnvironment);
        if (home is not null) Set(merged, "HOME=" + home);
        foreach (string entry in overrides ?? [])
        {
            if (entry.IndexOf('=') <= 0) throw new ExecStartException($"environment entry '{entry}' is not KEY=VALUE");
            Set(merged, entry);
        }
        return merged.ToArray();

        static void Set(List<string> list, string entry)
        {
            string key = entry[..(entry.IndexOf('=') + 1)];
            int i = list.FindIndex(e => e.StartsWith(key, StringComparison.Ordinal));
            if (i >= 0) list[i] = entry; else list.Add(entry);
        }
    }

    private static string? Lookup(string[] env, string key)
    {
        foreach (string e in env)
            if (e.StartsWith(key + "=", StringComparison.Ordinal)) return e[(key.Length + 1)..];
        return null;
    }

    /// <summary>
    /// Resolves argv[0]: with a slash it is a path (relative to <paramref name="cwd"/>); otherwise the
    /// first executable match in <paramref name="pathVar"/>. Throws with 127 (not found) or 126 (not executable).
    /// </summary>
    public static string ResolveExecutable(string arg0, string? pathVar, string cwd)
    {
        if (arg0.Contains('/'))
        {
            string full = Path.IsPathRooted(arg0) ? arg0 : Path.Combine(cwd, arg0);
            if (Directory.Exists(full)) throw new ExecStartException($"'{arg0}' is a directory", 126);
            if (!File.Exists(full)) throw new ExecStartException($"'{arg0}': no such file", 127);
            if (Spawn.CheckExecutable(full) != 0) throw new ExecStartException($"'{arg0}': permission denied", 126);
            return full;
        }
        string? denied = null;
        foreach (string dir in (pathVar ?? "").Split(':'))
        {
            string d = dir.Length == 0 ? cwd : Path.IsPathRooted(dir) ? dir : Path.Combine(cwd, dir);
            string candidate = Path.Combine(d, arg0);
            if (!File.Exists(candidate)) continue;
            if (Spawn.CheckExecutable(candidate) == 0) return candidate;
            denied ??= candidate;
        }
        if (denied is not null) throw new ExecStartException($"'{denied}': permission denied", 126);
        throw new ExecStartException($"'{arg0}': command not found in PATH", 127);
    }

    private static ExecResult Failed(int exitCode, string error) =>
        new() { Status = ExecStatuses.FailedToStart, ExitCode = exitCode, Error = error };
}
