using System.Text;
using System.Threading.Channels;
using Microagent.Guest.Exec;
using Microagent.Interop;
using Microagent.Protocol;
using Microagent.Workspaces;
using Microsoft.Win32.SafeHandles;

namespace Microagent.Tests.Guest.Exec;

public sealed class ExecEngineTests
{
    private readonly ExecEngine _engine = new(new PerChildWaiter());

    private Task<ExecResult> Run(params string[] argv) => _engine.RunAsync(new ExecRequest { Argv = argv, TimeoutMs = 20_000 });

    private static string Text(byte[]? b) => Encoding.UTF8.GetString(b ?? []);

    [Fact]
    public async Task ExitCodeIsReported()
    {
        ExecResult r = await Run("sh", "-c", "exit 42");
        Assert.Equal(ExecStatuses.Exited, r.Status);
        Assert.Equal(42, r.ExitCode);
        Assert.Null(r.Signal);
    }

    [Fact]
    public async Task StdoutAndStderrAreSeparate()
    {
        ExecResult r = await Run("sh", "-c", "echo out; echo err >&2; echo out2");
        Assert.Equal("out\nout2\n", Text(r.Stdout));
        Assert.Equal("err\n", Text(r.Stderr));
    }

    [Fact]
    public async Task InlineStdinIsFedAndClosed()
    {
        ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["cat"], Stdin = "hello\nworld"u8.ToArray() });
        Assert.Equal("hello\nworld", Text(r.Stdout));
    }

    [Fact]
    public async Task EmptyStdinReadsEndOfFile()
    {
        ExecResult r = await Run("sh", "-c", "cat; echo done");
        Assert.Equal("done\n", Text(r.Stdout));
    }

    [Fact]
    public async Task StreamedStdinArrivesInOrderUntilEof()
    {
        var stdin = Channel.CreateUnbounded<byte[]>();
        Task<ExecResult> run = _engine.RunAsync(new ExecRequest { Argv = ["wc", "-c"], StdinStream = true }, stdin.Reader);
        for (int i = 0; i < 100; i++) await stdin.Writer.WriteAsync(new byte[1000]);
        stdin.Writer.Complete();
        ExecResult r = await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("100000", Text(r.Stdout).Trim());
    }

    [Fact]
    public async Task EnvironmentIsMergedOverDefaults()
    {
        ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["sh", "-c", "echo $FOO:$HOME:$PATH"], Env = ["FOO=bar", "HOME=/tmp"] });
        Assert.Equal("bar:/tmp:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", Text(r.Stdout));
    }

    [Fact]
    public async Task CwdIsApplied()
    {
        string dir = Directory.CreateTempSubdirectory("agent-cwd").FullName;
        try
        {
            ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["pwd"], Cwd = dir });
            Assert.Equal(dir + "\n", Text(r.Stdout));
            ExecResult rel = await _engine.RunAsync(new ExecRequest { Argv = ["sh", "-c", "echo x > f && ./g"], Cwd = dir });
            Assert.Equal(127, rel.ExitCode); // sh reports ./g missing, from the right directory
            Assert.True(File.Exists(Path.Combine(dir, "f")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task BadCwdFailsToStart()
    {
        ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["true"], Cwd = "/does/not/exist" });
        Assert.Equal(ExecStatuses.FailedToStart, r.Status);
        Assert.Contains("/does/not/exist", r.Error);
    }

    [Fact]
    public async Task TimeoutKillsTheWholeProcessGroup()
    {
        // Every process of the group holds the write end of a FIFO (fd 3, inherited across fork and exec); the test's
        // reader sees end of file exactly when the last of them is gone. A survivor (the background sleep, or the
        // foreground one) would hold it for 30 s.
        string dir = Directory.CreateTempSubdirectory("agent-timeout").FullName;
        try
        {
            string fifo = Path.Combine(dir, "group.fifo");
            FileNodes.Mknod(fifo, FileNodes.S_IFIFO | 0b110_000_000, 0, 0);
            // Opening either end of a FIFO blocks until the other end is opened: open both concurrently. The test's
            // own write end keeps the reader from seeing end of file before the script has opened its copy.
            Task<SafeFileHandle> openReader = Task.Factory.StartNew(() => File.OpenHandle(fifo, FileMode.Open, FileAccess.Read),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            SafeFileHandle ours = File.OpenHandle(fifo, FileMode.Open, FileAccess.Write);
            using var reader = new FileStream(await openReader.WaitAsync(TimeSpan.FromSeconds(10)), FileAccess.Read, 1);
            Task<string> readToEnd = Task.Factory.StartNew(() => new StreamReader(reader).ReadToEnd(),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            ExecResult r = await _engine.RunAsync(new ExecRequest
            {
                Argv = ["sh", "-c", $"exec 3>{fifo}; sleep 30 & echo started >&3; sleep 30"],
                TimeoutMs = 1000,
            });
            Assert.Equal(ExecStatuses.TimedOut, r.Status);
            Assert.Equal(124, r.ExitCode);
            Assert.InRange(r.DurationMs, 950, 10_000);

            ours.Dispose();
            Task done = await Task.WhenAny(readToEnd, Task.Delay(TimeSpan.FromSeconds(10)));
            Assert.True(done == readToEnd, "a process of the timed-out group still holds the FIFO 10 s after the kill");
            // The background child existed (it was forked before the line was written) when the group was killed.
            Assert.Equal("started\n", await readToEnd);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task DeathBySignalIsNotAnExitCode()
    {
        ExecResult killed = await Run("sh", "-c", "kill -9 $$");
        Assert.Equal(ExecStatuses.Signaled, killed.Status);
        Assert.Equal(9, killed.Signal);
        Assert.Equal(137, killed.ExitCode);

        ExecResult exited = await Run("sh", "-c", "exit 137");
        Assert.Equal(ExecStatuses.Exited, exited.Status);
        Assert.Equal(137, exited.ExitCode);
        Assert.Null(exited.Signal);
    }

    [Fact]
    public async Task SignalDispositionsAreReset()
    {
        // The .NET runtime ignores SIGPIPE and ignored dispositions survive exec; the child must get the default.
        ExecResult pipe = await Run("sh", "-c", "kill -PIPE $$");
        Assert.Equal(ExecStatuses.Signaled, pipe.Status);
        Assert.Equal(13, pipe.Signal);
    }

    [Fact]
    public async Task MissingProgramFailsWith127()
    {
        ExecResult r = await Run("definitely-not-a-program-xyz");
        Assert.Equal(ExecStatuses.FailedToStart, r.Status);
        Assert.Equal(127, r.ExitCode);
        Assert.NotNull(r.Error);
        Assert.Equal(127, (await Run("/nonexistent/bin")).ExitCode);
    }

    [Fact]
    public async Task NonExecutableFailsWith126()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "#!/bin/sh\necho hi\n");
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            ExecResult r = await Run(file);
            Assert.Equal(ExecStatuses.FailedToStart, r.Status);
            Assert.Equal(126, r.ExitCode);
            Assert.Equal(126, (await Run("/tmp")).ExitCode);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public async Task MissingInterpreterFailsToStart()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "#!/no/such/interpreter\n");
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            ExecResult r = await Run(file);
            Assert.Equal(ExecStatuses.FailedToStart, r.Status);
            Assert.Equal(127, r.ExitCode);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public async Task OutputBeyondTheLimitIsDroppedWhileTheProcessRuns()
    {
        ExecResult r = await _engine.RunAsync(new ExecRequest
        {
            Argv = ["sh", "-c", "head -c 3000000 /dev/zero; echo e >&2; echo done >&2"],
            MaxOutputBytes = 1000,
            TimeoutMs = 20_000,
        });
        Assert.Equal(ExecStatuses.Exited, r.Status);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(1000, r.Stdout!.Length);
        Assert.True(r.StdoutTruncated);
        Assert.False(r.StderrTruncated);
        Assert.Equal("e\ndone\n", Text(r.Stderr));
    }

    [Fact]
    public async Task StreamModeForwardsTensOfMegabytes()
    {
        long stdout = 0, stderr = 0;
        int chunks = 0;
        ExecResult r = await _engine.RunAsync(
            new ExecRequest { Argv = ["sh", "-c", "head -c 12582912 /dev/zero; echo bye >&2"], Mode = ExecModes.Stream, TimeoutMs = 30_000 },
            onChunk: (isErr, data) =>
            {
                Assert.InRange(data.Length, 1, 64 * 1024);
                if (isErr) stderr += data.Length; else stdout += data.Length;
                chunks++;
                return ValueTask.CompletedTask;
            });
        Assert.Equal(ExecStatuses.Exited, r.Status);
        Assert.Equal(12582912, stdout);
        Assert.Equal(4, stderr);
        Assert.True(chunks >= 192);
        Assert.Null(r.Stdout);
    }

    [Fact]
    public async Task StreamReceiverFailureKillsTheProcess()
    {
        ExecResult r = await _engine.RunAsync(
            new ExecRequest { Argv = ["sh", "-c", "while :; do echo spam; done"], Mode = ExecModes.Stream, TimeoutMs = 20_000 },
            onChunk: (_, _) => throw new IOException("host went away"));
        Assert.Equal(ExecStatuses.Signaled, r.Status);
    }

    [Fact]
    public async Task HundredParallelExecs()
    {
        Task<ExecResult>[] runs = Enumerable.Range(0, 100)
            .Select(i => Run("sh", "-c", $"sleep 0.2; echo {i}; exit {i % 50}"))
            .ToArray();
        ExecResult[] results = await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(ExecStatuses.Exited, results[i].Status);
            Assert.Equal(i % 50, results[i].ExitCode);
            Assert.Equal($"{i}\n", Text(results[i].Stdout));
        }
    }

    [Fact]
    public async Task BackgroundChildHoldingThePipeDoesNotBlockTheResult()
    {
        // The background sleep keeps stdout's write end open for 30 s: the result must come while it still runs.
        ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["sh", "-c", "sleep 30 & echo $!"], TimeoutMs = 20_000 })
            .WaitAsync(TimeSpan.FromSeconds(20));
        int background = int.Parse(Text(r.Stdout).Trim());
        try
        {
            Assert.Equal(ExecStatuses.Exited, r.Status);
            Assert.Equal(0, r.ExitCode);
            Assert.True(ProcessTable.IsAlive(background), "the result was held until the background child exited");
        }
        finally { ProcessTable.Kill(background); }
    }

    [Fact]
    public async Task UserSwitchAffectsOnlyTheChild()
    {
        if (Environment.UserName != "root") return; // needs CAP_SETUID
        ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["sh", "-c", "id -u; id -g"], User = "65534:65534" });
        Assert.Equal("65534\n65534\n", Text(r.Stdout));
        ExecResult byName = await _engine.RunAsync(new ExecRequest { Argv = ["id", "-u"], User = "nobody" });
        Assert.Equal("65534\n", Text(byName.Stdout));
        ExecResult stillRoot = await Run("id", "-u");
        Assert.Equal("0\n", Text(stillRoot.Stdout));
    }

    [Fact]
    public async Task UnknownUserFailsToStart()
    {
        ExecResult r = await _engine.RunAsync(new ExecRequest { Argv = ["true"], User = "no-such-user-xyz" });
        Assert.Equal(ExecStatuses.FailedToStart, r.Status);
        Assert.Contains("no-such-user-xyz", r.Error);
    }
}
