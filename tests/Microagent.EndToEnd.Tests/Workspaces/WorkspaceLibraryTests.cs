using System.Diagnostics;
using System.Text;
using Microagent.Workspaces;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>The .NET library end to end (the same WorkspaceManager the CLI uses), the idle lease, 100 parallel execs, the sample program.</summary>
public sealed class WorkspaceLibraryTests
{
    private static WorkspaceManager Manager() =>
        new(new StatePaths(MicroagentCli.StateDir), new WorkspaceManagerOptions { SupervisorExecutable = MicroagentCli.Binary });

    [Fact]
    public async Task Lifecycle_through_the_library_with_100_parallel_execs()
    {
        var m = Manager();
        const string name = "lib";
        try
        {
            var created = await m.CreateAsync(new WorkspaceSpec { Name = name, Profile = "tiny", Env = ["LIB=1"] });
            Assert.Equal(WorkspaceState.Prepared, created.State);
            await Assert.ThrowsAsync<WorkspaceExistsException>(() => m.CreateAsync(new WorkspaceSpec { Name = name }));
            await Assert.ThrowsAsync<WorkspaceStateException>(() => m.ExecAsync(name, new ExecOptions { Command = ["true"] }));

            var started = await m.StartAsync(name);
            Assert.Equal(WorkspaceState.Running, started.State);
            Assert.True(started.ExecReady);
            await Assert.ThrowsAsync<WorkspaceStateException>(() => m.StartAsync(name));

            var r = await m.ExecAsync(name, new ExecOptions { Command = ["sh", "-c", "echo $LIB; cat"], Stdin = new MemoryStream("in\n"u8.ToArray()) });
            Assert.Equal(0, r.ExitCode);
            Assert.Equal("1\nin\n", Encoding.UTF8.GetString(r.Stdout!));

            var outStream = new MemoryStream();
            var streamed = await m.ExecStreamAsync(name, new ExecOptions { Command = ["sh", "-c", "echo live; exit 4"] }, outStream, Stream.Null);
            Assert.Equal(4, streamed.ExitCode);
            Assert.Equal("live\n", Encoding.UTF8.GetString(outStream.ToArray()));

            var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
                m.ExecAsync(name, new ExecOptions { Command = ["sh", "-c", $"echo {i}; echo e{i} >&2; exit {i % 7}"] })));
            for (int i = 0; i < 100; i++)
            {
                Assert.Equal(i % 7, results[i].ExitCode);
                Assert.Equal($"{i}\n", Encoding.UTF8.GetString(results[i].Stdout!));
                Assert.Equal($"e{i}\n", Encoding.UTF8.GetString(results[i].Stderr!));
            }

            string tmp = Path.Combine(Path.GetTempPath(), $"ma-lib-{Environment.ProcessId}");
            Directory.CreateDirectory(tmp);
            try
            {
                File.WriteAllText(Path.Combine(tmp, "in.txt"), "payload");
                await m.CopyToAsync(name, Path.Combine(tmp, "in.txt"), "/root/in.txt");
                var copied = await m.CopyFromAsync(name, "/root/in.txt", Path.Combine(tmp, "out.txt"));
                Assert.Equal(7, copied.Bytes);
                Assert.Equal("payload", File.ReadAllText(Path.Combine(tmp, "out.txt")));
            }
            finally { Directory.Delete(tmp, true); }

            using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500)))
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => m.ExecAsync(name, new ExecOptions { Command = ["sleep", "30"] }, cts.Token));

            Assert.Contains(await m.ListAsync(), s => s.Name == name && s.State == WorkspaceState.Running);
            var halted = await m.HaltAsync(name);
            Assert.Equal(WorkspaceState.Halted, halted.State);
            var states = new List<WorkspaceState>();
            await foreach (var e in m.ReadEventsAsync(name)) states.Add(e.State);
            Assert.Equal([WorkspaceState.Prepared, WorkspaceState.Starting, WorkspaceState.Running, WorkspaceState.Stopping, WorkspaceState.Halted], states);
            Assert.True((await m.DeleteAsync(name)).Existed);
            await Assert.ThrowsAsync<WorkspaceNotFoundException>(() => m.GetStatusAsync(name));
        }
        finally
        {
            await m.DeleteAsync(name, new DeleteOptions { Force = true });
        }
    }

    [Fact]
    public async Task Idle_lease_is_renewed_by_exec_and_reaps_when_idle()
    {
        var m = Manager();
        const string name = "leased";
        try
        {
            await m.CreateAsync(new WorkspaceSpec { Name = name, TtlSeconds = 6 });
            await m.StartAsync(name);
            var clock = Stopwatch.StartNew();
            TimeSpan lastExec = TimeSpan.Zero;
            while (clock.Elapsed < TimeSpan.FromSeconds(12))
            {
                var r = await m.ExecAsync(name, new ExecOptions { Command = ["true"] });
                Assert.Equal(0, r.ExitCode);
                lastExec = clock.Elapsed;
                await Task.Delay(TimeSpan.FromSeconds(2));
            }
            Assert.Equal(WorkspaceState.Running, (await m.GetStatusAsync(name)).State); // renewed past 2× the ttl
            var reaped = await m.WaitAsync(name, TimeSpan.FromSeconds(60));
            Assert.Equal(WorkspaceState.Halted, reaped.State);
            Assert.Contains("ttl", reaped.Detail);
            Assert.True(clock.Elapsed >= lastExec + TimeSpan.FromSeconds(5), $"reaped {clock.Elapsed} after the last exec at {lastExec}");
        }
        finally
        {
            await m.DeleteAsync(name, new DeleteOptions { Force = true });
        }
    }

    [Fact]
    public async Task The_sample_program_builds_and_runs()
    {
        string project = Path.Combine(MicroagentCli.RepoRoot, "samples", "WorkspaceSample");
        var psi = new ProcessStartInfo("dotnet", ["run", "--project", project, "-c", "Release", "--", "sample-ws"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.Environment["MICROAGENT_STATE_DIR"] = MicroagentCli.StateDir;
        psi.Environment[WorkspaceManager.BinaryVariable] = MicroagentCli.Binary;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(4));
        Assert.True(p.ExitCode == 0, await stdout + await stderr);
        Assert.Contains("hello from sample-ws", await stdout);
        Assert.Contains("deleted", await stdout);
        Assert.Empty(MicroagentCli.QemuProcessesUnder(Path.Combine(MicroagentCli.StateDir, "workspaces", "sample-ws") + "/"));
    }
}
