using System.Diagnostics;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// <c>connect</c> through the real binary, real QEMU (TCG) and the real guest (docs/ARCHITECTURE.md "Console"): <c>--send</c> from a
/// real terminal (the CLI under <c>script</c>), its timeout error with the partial output, and an interactive session driven
/// through tmux — type, resize, detach. One workspace for the class.
/// </summary>
public sealed class WorkspaceConsoleTests : IAsyncLifetime
{
    private const string Name = "console-e2e";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"ma-console-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var create = await Ma("create", Name);
        Assert.True(create.ExitCode == 0, create.Stderr);
        var start = await Ma("start", Name);
        Assert.True(start.ExitCode == 0, start.Stderr);
    }

    public async Task DisposeAsync()
    {
        await Ma("kill", Name);
        await Ma("delete", Name);
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>Runs a host command line (sh -c) with the test's state directory; returns its exit code and output.</summary>
    private static async Task<(int Code, string Output)> ShAsync(string commandLine, int timeoutSeconds = 120)
    {
        var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(commandLine);
        psi.Environment["MICROAGENT_STATE_DIR"] = MicroagentCli.StateDir;
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout + await stderr);
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [Fact]
    public async Task Send_from_a_real_terminal_prints_the_lines_output_without_prompt_or_echo()
    {
        // script(1) gives the CLI a pseudo-terminal as stdin and stdout, as a user's shell would.
        string cli = $"{Quote(MicroagentCli.Binary)} connect {Name} --send {Quote("echo hi; uname -n")} --timeout 60s";
        var (code, output) = await ShAsync($"script -qfec {Quote(cli)} /dev/null");
        Assert.True(code == 0, output);
        Assert.Equal($"hi\n{Name}\n", output.Replace("\r\n", "\n", StringComparison.Ordinal));

        var json = await Ma("connect", Name, "--send", "echo out; echo err >&2; exit_code() { return 3; }; exit_code", "--timeout", "60s", "--json");
        Assert.Equal(3, json.ExitCode);
        Assert.Equal("out\nerr\n", Json(json).GetProperty("output").GetString());
        Assert.Equal(3, Json(json).GetProperty("exitCode").GetInt32());
    }

    [Fact]
    public async Task Send_timeout_is_a_timeout_error_carrying_the_partial_output()
    {
        // A warm-up send, so that the timed one measures the line rather than a cold guest.
        Assert.Equal(0, (await Ma("connect", Name, "--send", "true", "--timeout", "60s")).ExitCode);
        var r = await Ma("connect", Name, "--send", "echo partial; sleep 30", "--timeout", "4s", "--json");
        Assert.Equal(75, r.ExitCode);
        var error = Json(r).GetProperty("error");
        Assert.Equal("timeout", error.GetProperty("kind").GetString());
        Assert.Equal("partial\n", error.GetProperty("partialOutput").GetString());
        Assert.Contains("--timeout", error.GetProperty("remediation").GetString());

        var human = await Ma("connect", Name, "--send", "echo partial; sleep 30", "--timeout", "4s");
        Assert.Equal(75, human.ExitCode);
        Assert.Equal("partial\n", human.Stdout);
        Assert.Contains("did not finish within 4 s", human.Stderr);
    }

    [Fact]
    public async Task An_interactive_session_in_tmux_runs_what_is_typed_follows_resizes_and_detaches_with_ctrl_bracket()
    {
        string socket = $"ma-{Environment.ProcessId}-{Guid.NewGuid():N}"[..24];
        string exitFile = Path.Combine(_dir, "cli-exit");
        string tmux = $"tmux -L {socket}";
        string cli = $"MICROAGENT_STATE_DIR={Quote(MicroagentCli.StateDir)} {Quote(MicroagentCli.Binary)} connect {Name}; echo \"cli-exit=$?\" > {Quote(exitFile)}; sleep 600";
        try
        {
            var started = await ShAsync($"{tmux} new-session -d -s console -x 100 -y 30 {Quote(cli)}");
            Assert.True(started.Code == 0, started.Output);

            async Task<string> PaneAsync() => (await ShAsync($"{tmux} capture-pane -p -t console")).Output;
            async Task TypeAsync(string keys) => Assert.Equal(0, (await ShAsync($"{tmux} send-keys -t console {keys}")).Code);
            async Task WaitForAsync(string text, string what) =>
                await Poll.UntilAsync(async () => (await PaneAsync()).Contains(text, StringComparison.Ordinal), Limit, what);

            await WaitForAsync("connected to console-e2e", "the console to connect");
            // The output (joined) differs from what was typed (quoted), so the echo of the line does not satisfy the wait.
            await TypeAsync($"{Quote("echo hel''lo-from-the-console")} Enter");
            await WaitForAsync("hello-from-the-console", "the guest shell to run the typed line");
            // The pane's size as tmux has it (rows cols, as stty prints them); the guest's terminal must agree.
            async Task<string> PaneSizeAsync() => (await ShAsync($"{tmux} display-message -p -t console '#{{pane_height}} #{{pane_width}}'")).Output.Trim();
            string before = await PaneSizeAsync();
            await TypeAsync($"{Quote("stty size")} Enter");
            await WaitForAsync($"\n{before}", $"the guest terminal to have the pane's size ({before})");

            Assert.Equal(0, (await ShAsync($"{tmux} resize-window -t console -x 120 -y 40")).Code);
            string after = await PaneSizeAsync();
            Assert.NotEqual(before, after);
            await TypeAsync($"{Quote("stty size")} Enter");
            await WaitForAsync($"\n{after}", $"the guest terminal to follow the resize ({after})");

            await TypeAsync("C-]");
            await Poll.UntilAsync(() => File.Exists(exitFile) && File.ReadAllText(exitFile).Contains('\n'), Limit, "the CLI to exit after Ctrl-]");
            Assert.Equal("cli-exit=0", File.ReadAllText(exitFile).Trim());
            Assert.Contains("detached from console-e2e", await PaneAsync());
            var status = await Ma("status", Name, "--json");
            Assert.Equal("running", Json(status).GetProperty("state").GetString());
        }
        finally
        {
            await ShAsync($"{tmux} kill-server");
        }
    }
}
