using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Cli;

/// <summary>`microagent run` end to end: real binary, real QEMU (TCG here), real kernel, real guest agent.</summary>
public sealed class RunCommandTests
{
    private static async Task<CliResult> Run(params string[] args) => await MicroagentCli.RunAsync(["run", .. args]);

    private static void AssertNoQemuLeft() => Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));

    private static void AssertNoWorkspaceLeft()
    {
        string ws = Path.Combine(MicroagentCli.StateDir, "workspaces");
        Assert.True(!Directory.Exists(ws) || Directory.GetDirectories(ws).Length == 0, "a workspace directory was left behind");
    }

    [Fact]
    public async Task Separates_stdout_and_stderr_and_passes_exit_code_through()
    {
        var r = await Run("--", "sh", "-c", "uname -a; echo to-stderr >&2; exit 42");
        Assert.Equal(42, r.ExitCode);
        Assert.StartsWith("Linux ", r.Stdout);
        Assert.DoesNotContain("to-stderr", r.Stdout);
        Assert.Contains("to-stderr", r.Stderr);
        AssertNoQemuLeft();
        AssertNoWorkspaceLeft();
    }

    [Fact]
    public async Task Forwards_host_stdin()
    {
        var payload = Encoding.UTF8.GetBytes("line one\nline two\n");
        var r = await MicroagentCli.RunAsync(["run", "--", "sh", "-c", "wc -l; echo done"], stdin: payload);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("2\ndone\n", r.Stdout.Replace(" ", ""));
    }

    [Fact]
    public async Task Sets_env_and_cwd()
    {
        var r = await Run("-e", "GREETING=hello world", "--cwd", "/tmp", "--", "sh", "-c", "echo \"$GREETING\"; pwd");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("hello world\n/tmp\n", r.Stdout);
    }

    [Fact]
    public async Task Times_out_with_124()
    {
        var r = await Run("--json", "--timeout", "2", "--", "sleep", "60");
        Assert.Equal(124, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("timed_out", doc.RootElement.GetProperty("status").GetString());
        AssertNoQemuLeft();
    }

    [Fact]
    public async Task Reports_death_by_signal()
    {
        var r = await Run("--json", "--", "sh", "-c", "kill -9 $$");
        Assert.Equal(137, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("signaled", doc.RootElement.GetProperty("status").GetString());
        Assert.Equal(9, doc.RootElement.GetProperty("signal").GetInt32());
    }

    [Fact]
    public async Task Exit_137_is_not_a_signal()
    {
        var r = await Run("--json", "--", "sh", "-c", "exit 137");
        Assert.Equal(137, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("exited", doc.RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Missing_command_fails_to_start_with_127()
    {
        var r = await Run("--json", "--", "/no/such/program", "arg");
        Assert.Equal(127, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("failed_to_start", doc.RootElement.GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task Streams_ten_mebibytes_of_output()
    {
        var r = await Run("--", "sh", "-c", "head -c 10485760 /dev/zero | tr '\\0' x; echo end >&2");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(10 * 1024 * 1024, r.StdoutBytes.Length);
        Assert.All(r.StdoutBytes.Take(4096), b => Assert.Equal((byte)'x', b));
        Assert.Equal((byte)'x', r.StdoutBytes[^1]);
        Assert.Contains("end", r.Stderr);
    }

    [Fact]
    public async Task Json_result_has_output_and_phase_timings()
    {
        var r = await Run("--json", "--", "sh", "-c", "echo out; echo err >&2; exit 3");
        Assert.Equal(3, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal("exited", root.GetProperty("status").GetString());
        Assert.Equal(3, root.GetProperty("exitCode").GetInt32());
        Assert.Equal("out\n", root.GetProperty("stdout").GetString());
        Assert.Equal("err\n", root.GetProperty("stderr").GetString());
        var t = root.GetProperty("timings");
        foreach (string phase in new[] { "prepareMs", "bootMs", "execMs", "teardownMs", "totalMs" })
            Assert.True(t.GetProperty(phase).GetInt64() >= 0, phase);
        Assert.True(t.GetProperty("bootMs").GetInt64() > 0);
    }

    [Fact]
    public async Task Runs_as_another_user()
    {
        var r = await Run("--user", "65534:65534", "--", "id");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("uid=65534", r.Stdout);
        Assert.Contains("gid=65534", r.Stdout);
    }

    [Fact]
    public async Task Keep_leaves_the_workspace_directory()
    {
        var r = await Run("--json", "--keep", "--", "sh", "-c", "echo kept > /root/file");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        string dir = doc.RootElement.GetProperty("keptAt").GetString()!;
        Assert.True(File.Exists(Path.Combine(dir, "root.qcow2")));
        Assert.True(File.Exists(Path.Combine(dir, "serial.log")));
        Directory.Delete(dir, true);
        AssertNoQemuLeft();
    }

    [Fact]
    public async Task Interrupt_tears_everything_down()
    {
        using var p = MicroagentCli.Start(["run", "--", "sh", "-c", "echo started; sleep 120"]);
        var firstLine = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal("started", firstLine);
        Assert.NotEmpty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
        Process.Start("kill", ["-INT", p.Id.ToString()])!.WaitForExit();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(130, p.ExitCode);
        AssertNoQemuLeft();
        AssertNoWorkspaceLeft();
    }
}
