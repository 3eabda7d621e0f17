using System.Diagnostics;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>kill -9 of the supervisor or of QEMU: the next command reports the truth and start works again; gc reaps orphans.</summary>
public sealed class WorkspaceRecoveryTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Status(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static void Kill9(int pid) => Process.Start("kill", ["-9", pid.ToString()])!.WaitForExit();

    /// <summary>Waits until <paramref name="pid"/> has exited (gone, or a zombie nobody reaped yet); fails the test if it has not in 10 s.</summary>
    private static Task WaitGone(int pid, string what) => Poll.UntilAsync(() =>
    {
        try { return File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; }
    }, TimeSpan.FromSeconds(10), $"{what} (pid {pid}) to exit");

    /// <summary>
    /// The pid of a process that has exited and been reaped. Pids are handed out in increasing order and reused only
    /// after wrapping at pid_max, so no new process takes this one while the test runs.
    /// </summary>
    private static int DeadPid()
    {
        using var p = Process.Start("true")!;
        p.WaitForExit();
        Assert.False(Directory.Exists($"/proc/{p.Id}"), $"pid {p.Id} is still in /proc after its process was reaped");
        return p.Id;
    }

    [Fact]
    public async Task Supervisor_and_qemu_kill_9_are_reported_and_start_works_again()
    {
        const string name = "crashy";
        string dir = Path.Combine(MicroagentCli.StateDir, "workspaces", name);
        try
        {
            Assert.Equal(0, (await Ma("create", name)).ExitCode);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var s = Status(await Ma("status", name, "--json"));
            int supervisor = s.GetProperty("pids").GetProperty("supervisor").GetInt32();
            int qemu = s.GetProperty("pids").GetProperty("qemu").GetInt32();

            Kill9(supervisor);
            await WaitGone(supervisor, "the killed supervisor");
            await WaitGone(qemu, "QEMU, after its supervisor died (pdeathsig)");
            var after = Status(await Ma("status", name, "--json"));
            Assert.Equal("failed", after.GetProperty("state").GetString());
            Assert.Contains("supervisor", after.GetProperty("detail").GetString());
            Assert.Empty(MicroagentCli.QemuProcessesUnder(dir + "/"));
            Assert.False(File.Exists(Path.Combine(dir, "control.sock")));

            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            Assert.Equal(0, (await Ma("exec", name, "--", "true")).ExitCode);
            qemu = Status(await Ma("status", name, "--json")).GetProperty("pids").GetProperty("qemu").GetInt32();
            Kill9(qemu);
            string? state = null, detail = null;
            await Poll.UntilAsync(async () =>
            {
                var st = Status(await Ma("status", name, "--json"));
                state = st.GetProperty("state").GetString();
                detail = st.GetProperty("detail").GetString();
                return state == "failed";
            }, TimeSpan.FromSeconds(30), "the workspace to be reported failed after QEMU was killed");
            Assert.Contains("QEMU", detail);
            Assert.Contains("signal 9", detail);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            Assert.Equal(0, (await Ma("exec", name, "--", "true")).ExitCode);
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
        Assert.Empty(MicroagentCli.QemuProcessesUnder(dir + "/"));
    }

    [Fact]
    public async Task Gc_reaps_run_dirs_stale_sockets_and_corrects_state()
    {
        string ws = Path.Combine(MicroagentCli.StateDir, "workspaces");
        Directory.CreateDirectory(ws);
        // A one-shot run killed before it wrote anything useful, last touched long ago.
        string run = Path.Combine(ws, "run-deadbeef0000");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "serial.log"), "x");
        Directory.SetLastWriteTimeUtc(run, DateTime.UtcNow.AddHours(-1));
        // A workspace whose state claims running with a supervisor that does not exist.
        const string name = "orphan";
        int deadSupervisor = DeadPid();
        Assert.Equal(0, (await Ma("create", name)).ExitCode);
        string statePath = Path.Combine(ws, name, "state.json");
        string json = File.ReadAllText(statePath).Replace("\"state\": \"prepared\"", $"\"state\": \"running\", \"supervisorPid\": {deadSupervisor}");
        File.WriteAllText(statePath, json);
        File.WriteAllText(Path.Combine(ws, name, "control.sock"), "");
        try
        {
            var gc = await Ma("gc", "--json");
            Assert.Equal(0, gc.ExitCode);
            var report = JsonDocument.Parse(gc.Stdout).RootElement;
            Assert.Contains("run-deadbeef0000", report.GetProperty("removedRuns").EnumerateArray().Select(e => e.GetString()));
            Assert.Contains(name, report.GetProperty("reconciled").EnumerateArray().Select(e => e.GetString()));
            Assert.False(Directory.Exists(run));
            Assert.False(File.Exists(Path.Combine(ws, name, "control.sock")));
            var s = Status(await Ma("status", name, "--json"));
            Assert.Equal("failed", s.GetProperty("state").GetString());
            Assert.Contains(deadSupervisor.ToString(), s.GetProperty("detail").GetString());
        }
        finally { await Ma("delete", name); }
    }
}
