using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>Named workspaces through the real CLI: lifecycle, exec, cp, status, events, halt/start persistence, workload result.</summary>
public sealed class WorkspaceCliTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static string Ws(string name) => Path.Combine(MicroagentCli.StateDir, "workspaces", name);

    [Fact]
    public async Task Lifecycle_exec_cp_status_events_and_halt_start_keeps_the_disk()
    {
        const string name = "life";
        try
        {
            var create = await Ma("create", name, "--setup", "echo ran >> /root/setup.log", "-e", "FROM_CREATE=yes", "--json");
            Assert.True(create.ExitCode == 0, create.Stdout + create.Stderr);
            using (var doc = JsonDocument.Parse(create.Stdout)) Assert.Equal("prepared", doc.RootElement.GetProperty("state").GetString());

            var start = await Ma("start", name);
            Assert.True(start.ExitCode == 0, start.Stderr);
            var again = await Ma("start", name, "--json");
            Assert.Equal(1, again.ExitCode);
            using (var err = JsonDocument.Parse(again.Stdout)) Assert.Equal("conflict", err.RootElement.GetProperty("error").GetProperty("kind").GetString());

            var exec = await Ma("exec", name, "--cwd", "/tmp", "-e", "A=1", "--", "sh", "-c", "echo $A > f; cat f; pwd; echo $FROM_CREATE; echo oops >&2; exit 7");
            Assert.Equal(7, exec.ExitCode);
            Assert.Equal("1\n/tmp\nyes\n", exec.Stdout);
            Assert.Contains("oops", exec.Stderr);

            // cp both ways, files and directories, modes kept.
            string host = Path.Combine(Path.GetTempPath(), $"ma-cp-{Environment.ProcessId}");
            Directory.CreateDirectory(Path.Combine(host, "tree", "sub"));
            try
            {
                File.WriteAllText(Path.Combine(host, "data.csv"), "a,b\n1,2\n");
                File.WriteAllText(Path.Combine(host, "tree", "run.sh"), "#!/bin/sh\necho from-tree\n");
                File.SetUnixFileMode(Path.Combine(host, "tree", "run.sh"), (UnixFileMode)0b111_101_000); // 0750
                File.WriteAllText(Path.Combine(host, "tree", "sub", "secret"), "s");
                File.SetUnixFileMode(Path.Combine(host, "tree", "sub", "secret"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
                Assert.Equal(0, (await Ma("cp", Path.Combine(host, "data.csv"), $"{name}:/tmp/data.csv")).ExitCode);
                Assert.Equal(0, (await Ma("cp", Path.Combine(host, "tree"), $"{name}:/root/")).ExitCode);
                var check = await Ma("exec", name, "--", "sh", "-c", "cat /tmp/data.csv; /root/tree/run.sh; stat -c '%a %n' /root/tree/run.sh /root/tree/sub/secret");
                Assert.Equal("a,b\n1,2\nfrom-tree\n750 /root/tree/run.sh\n600 /root/tree/sub/secret\n", check.Stdout);
                Assert.Equal(0, (await Ma("cp", $"{name}:/tmp/f", Path.Combine(host, "f"))).ExitCode);
                Assert.Equal("1\n", File.ReadAllText(Path.Combine(host, "f")));
                Assert.Equal(0, (await Ma("cp", $"{name}:/root/tree", Path.Combine(host, "back"))).ExitCode);
                Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(Path.Combine(host, "back", "run.sh")));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(host, "back", "sub", "secret")));
                var missing = await Ma("cp", $"{name}:/no/such", Path.Combine(host, "x"));
                Assert.Equal(1, missing.ExitCode);
            }
            finally { Directory.Delete(host, true); }

            var status = await Ma("status", name, "--json");
            using (var doc = JsonDocument.Parse(status.Stdout))
            {
                var root = doc.RootElement;
                Assert.Equal("running", root.GetProperty("state").GetString());
                Assert.True(root.GetProperty("guestReady").GetBoolean());
                Assert.True(root.GetProperty("execReady").GetBoolean());
                Assert.True(root.GetProperty("pids").GetProperty("qemu").GetInt32() > 0);
                Assert.Equal(64, root.GetProperty("kernel").GetProperty("sha256").GetString()!.Length);
                Assert.StartsWith("sha256:", root.GetProperty("rootfs").GetProperty("sha256").GetString());
                Assert.True(root.GetProperty("diskUsageBytes").GetInt64() > 0);
                Assert.Equal(256, root.GetProperty("config").GetProperty("memoryMiB").GetInt32());
            }
            Assert.Contains(name, (await Ma("ls")).Stdout);
            Assert.Contains(name, (await Ma("inspect", name)).Stdout);
            var logs = await Ma("logs", name);
            Assert.Equal(0, logs.ExitCode);
            Assert.NotEmpty(logs.Stdout);

            // State files 0600, directories 0700.
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Ws(name)));
            foreach (string f in new[] { "state.json", "config.json", "events.jsonl", "boot.json", "root.qcow2", "control.sock" })
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Ws(name), f)));

            var halt = await Ma("halt", name);
            Assert.True(halt.ExitCode == 0, halt.Stderr);
            Assert.Equal("halted", JsonDocument.Parse((await Ma("status", name, "--json")).Stdout).RootElement.GetProperty("state").GetString());
            var notRunning = await Ma("exec", name, "--", "true");
            Assert.Equal(1, notRunning.ExitCode);
            Assert.Contains("halted", notRunning.Stderr);

            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var after = await Ma("exec", name, "--", "sh", "-c", "cat /root/setup.log; ls /root/tree");
            Assert.Equal("ran\nrun.sh\nsub\n", after.Stdout); // disk kept, setup ran once

            var events = await Ma("events", name, "--json");
            using (var doc = JsonDocument.Parse(events.Stdout))
            {
                var states = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("state").GetString()).ToList();
                Assert.Equal(["prepared", "starting", "running", "stopping", "halted", "starting", "running"], states);
                var first = doc.RootElement[1];
                Assert.Equal(name, first.GetProperty("workspace").GetString());
                Assert.Equal("prepared", first.GetProperty("previous").GetString());
                Assert.True(first.TryGetProperty("observedAt", out _));
            }

            var running = await Ma("delete", name);
            Assert.Equal(1, running.ExitCode);
            Assert.Contains("--yes", running.Stderr);
            Assert.Equal(0, (await Ma("kill", name)).ExitCode);
            Assert.Equal("stopped", JsonDocument.Parse((await Ma("status", name, "--json")).Stdout).RootElement.GetProperty("state").GetString());
            Assert.Equal(0, (await Ma("rm", name, "--yes")).ExitCode);
            var absent = await Ma("delete", name, "--json");
            Assert.Equal(0, absent.ExitCode);
            Assert.False(JsonDocument.Parse(absent.Stdout).RootElement.GetProperty("existed").GetBoolean());
            Assert.False(Directory.Exists(Ws(name)));
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
        Assert.Empty(MicroagentCli.QemuProcessesUnder(Ws(name)));
    }

    [Fact]
    public async Task Workload_result_wait_and_spec_file()
    {
        const string name = "job";
        string spec = Path.Combine(Path.GetTempPath(), $"ma-spec-{Environment.ProcessId}.yaml");
        File.WriteAllText(spec, """
            name: job
            profile: tiny
            env:
              GREETING: hello
            setup:
              - echo set-up > /root/s
            exec: cat /root/s; echo "$GREETING $EXTRA"; echo to-err >&2; exit 3
            ttl: 0
            """);
        try
        {
            var create = await Ma("create", "-f", spec, "-e", "EXTRA=world", "--memory", "300");
            Assert.True(create.ExitCode == 0, create.Stderr);
            Assert.Contains("300 MiB", create.Stdout);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var wait = await Ma("wait", name, "--timeout", "120", "--json");
            Assert.True(wait.ExitCode == 0, wait.Stdout + wait.Stderr);
            using var w = JsonDocument.Parse(wait.Stdout);
            Assert.Equal("stopped", w.RootElement.GetProperty("state").GetString());
            Assert.Contains("exited with code 3", w.RootElement.GetProperty("detail").GetString());
            var result = await Ma("result", name, "--json");
            Assert.Equal(3, result.ExitCode);
            using var r = JsonDocument.Parse(result.Stdout);
            Assert.Equal("exited", r.RootElement.GetProperty("status").GetString());
            Assert.Equal("set-up\nhello world\n", r.RootElement.GetProperty("stdout").GetString());
            Assert.Equal("to-err\n", r.RootElement.GetProperty("stderr").GetString());
        }
        finally
        {
            File.Delete(spec);
            await Ma("delete", name, "--force");
        }
    }

    [Theory]
    [InlineData("a/b", "'/'")]
    [InlineData("..", "'..'")]
    [InlineData("-x", "invalid")]
    public async Task Names_are_validated(string name, string expected)
    {
        var r = await Ma("create", name, "--json");
        Assert.Equal(2, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("invalid", doc.RootElement.GetProperty("error").GetProperty("kind").GetString());
        Assert.Contains(expected, doc.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Missing_workspace_is_not_found()
    {
        var r = await Ma("status", "nope", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("not_found", JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error").GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Concurrent_create_of_one_name_has_one_winner()
    {
        const string name = "race";
        try
        {
            var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Ma("create", name, "--json")));
            Assert.Equal(1, results.Count(r => r.ExitCode == 0));
            foreach (var loser in results.Where(r => r.ExitCode != 0))
            {
                Assert.Equal(1, loser.ExitCode);
                Assert.Equal("conflict", JsonDocument.Parse(loser.Stdout).RootElement.GetProperty("error").GetProperty("kind").GetString());
            }
            var events = await Ma("events", name, "--json");
            Assert.Single(JsonDocument.Parse(events.Stdout).RootElement.EnumerateArray());
        }
        finally { await Ma("delete", name); }
    }
}
