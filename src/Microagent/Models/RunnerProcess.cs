using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microagent.Errors;
using Microagent.Interop;
using Microagent.Workspaces;

namespace Microagent.Models;

/// <summary>
/// Starting, probing and stopping one runner process (docs/ARCHITECTURE.md "Model runner"): posix_spawn in a new session
/// (no shell; stdin /dev/null, stdout and stderr appended to its log, 0600), readiness by polling the health path until it
/// answers below 400 within a bounded wait, the log's tail on failure, SIGTERM to its process group then SIGKILL.
/// </summary>
internal static class RunnerProcess
{
    /// <summary>Seconds a runner may take to become ready (<c>$MICROAGENT_MODEL_RUNNER_WAIT</c> overrides; default 180).</summary>
    public static TimeSpan ReadyWait =>
        int.TryParse(Environment.GetEnvironmentVariable("MICROAGENT_MODEL_RUNNER_WAIT"), out int s) && s > 0 ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(180);

    /// <summary>A free loopback TCP port (bound and released; the runner binds it next).</summary>
    public static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>Starts <paramref name="argv"/> with the host environment plus <paramref name="env"/>; returns its pid and start time.</summary>
    public static (int Pid, long? StartTime) Start(string[] argv, IReadOnlyList<string> env, string logPath, string cwd)
    {
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
        foreach (string e in env) { var kv = e.Split('=', 2); environment[kv[0]] = kv[1]; }
        string[] envp = [.. environment.Select(kv => $"{kv.Key}={kv.Value}")];
        using var log = new FileStream(logPath, new FileStreamOptions
        {
            Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        using var devNull = new FileStream("/dev/null", FileMode.Open, FileAccess.Read);
        var logFd = new SafeFileDescriptor((int)log.SafeFileHandle.DangerousGetHandle(), ownsHandle: false);
        var nullFd = new SafeFileDescriptor((int)devNull.SafeFileHandle.DangerousGetHandle(), ownsHandle: false);
        int r = Spawn.Start(argv[0], argv, envp, cwd, nullFd, logFd, logFd, out int pid);
        if (r != 0) throw MicroagentException.Permanent($"cannot start the model runner {argv[0]} (errno {r})", "check the program exists and is executable");
        return (pid, ProcessTable.StartTime(pid));
    }

    /// <summary>Waits until <c>GET http://HOST:PORT{health}</c> answers below 400; throws with the log's tail when the process dies or the wait ends.</summary>
    public static async Task WaitReadyAsync(ModelRunnerRecord runner, TimeSpan wait, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var until = Stopwatch.StartNew();
        var url = new Uri($"{runner.Url}{runner.HealthPath}");
        string last = "no answer";
        while (until.Elapsed < wait)
        {
            if (!ProcessTable.IsAlive(runner.Pid, runner.PidStartTime))
                throw Failed(runner, $"the model runner exited before it was ready ({last})");
            try
            {
                using var resp = await http.GetAsync(url, ct).ConfigureAwait(false);
                if ((int)resp.StatusCode < 400) return;
                last = $"{url.AbsolutePath} answered {(int)resp.StatusCode}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested) { last = e.GetType().Name; }
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
        throw Failed(runner, $"the model runner was not ready within {wait.TotalSeconds:0} s ({last})");
    }

    /// <summary>SIGTERM to the runner's process group, then SIGKILL after <paramref name="grace"/>; a runner already gone is fine.</summary>
    public static async Task StopAsync(ModelRunnerRecord runner, TimeSpan grace)
    {
        if (!ProcessTable.IsAlive(runner.Pid, runner.PidStartTime)) return;
        Signals.Kill(-runner.Pid, 15);
        if (await ProcessTable.WaitForExitAsync(runner.Pid, runner.PidStartTime, grace, CancellationToken.None).ConfigureAwait(false)) return;
        Signals.Kill(-runner.Pid, 9);
        await ProcessTable.WaitForExitAsync(runner.Pid, runner.PidStartTime, TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The last <paramref name="lines"/> lines of the runner's log.</summary>
    public static string Tail(string logPath, int lines = 20)
    {
        try
        {
            using var fs = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            long start = Math.Max(0, fs.Length - 16384);
            fs.Seek(start, SeekOrigin.Begin);
            string text = new StreamReader(fs).ReadToEnd();
            return string.Join('\n', text.Split('\n').TakeLast(lines + 1)).TrimEnd();
        }
        catch (IOException) { return ""; }
    }

    private static MicroagentException Failed(ModelRunnerRecord runner, string why)
    {
        string tail = Tail(runner.LogPath);
        return MicroagentException.Permanent($"{why}; argv: {string.Join(' ', runner.Argv)}" + (tail.Length > 0 ? $"\nlog tail ({runner.LogPath}):\n{tail}" : ""),
            "check the runner's program, arguments and model (the log above), or raise MICROAGENT_MODEL_RUNNER_WAIT");
    }
}
