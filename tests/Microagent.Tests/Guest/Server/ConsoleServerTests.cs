using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Tests.Guest.Server;

/// <summary>
/// The guest's console server and the host's console session together, in process over a unix socket: a real shell on a
/// real pseudo-terminal of this machine (docs/ARCHITECTURE.md "Console").
/// </summary>
public sealed class ConsoleServerTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"console-{Guid.NewGuid():N}.sock");
    private readonly CancellationTokenSource _stop = new();
    private Task? _serve;

    public Task InitializeAsync()
    {
        _serve = Listeners.ServeUnixAsync(_path, new ConsoleServer(new PerChildWaiter()).HandleAsync, _stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _serve!;
        File.Delete(_path);
    }

    private async Task<Stream> ConnectAsync()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(_path));
        return new NetworkStream(s, ownsSocket: true);
    }

    private async Task<WorkspaceConsole> OpenAsync(int rows = 24, int cols = 80, string? term = null, string shell = "/bin/sh") =>
        await WorkspaceConsole.OpenAsync("test", await ConnectAsync(),
            new ConsoleRequest { Rows = rows, Cols = cols, Term = term, Shell = shell, Env = ["PS1=$ ", "ENV="] }, CancellationToken.None);

    /// <summary>Reads the session's output until it contains <paramref name="expected"/>; returns everything read.</summary>
    private static async Task<string> ReadUntilAsync(WorkspaceConsole console, string expected, StringBuilder seen)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Timeout);
        while (!seen.ToString().Contains(expected, StringComparison.Ordinal))
        {
            int n = await console.Output.ReadAsync(buffer, timeout.Token);
            if (n == 0) break;
            seen.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return seen.ToString();
    }

    [Fact]
    public async Task A_shell_on_a_terminal_runs_what_is_typed_follows_resizes_and_reports_its_exit_status()
    {
        await using var console = await OpenAsync(rows: 24, cols: 80, term: "vt100");
        var seen = new StringBuilder();
        await console.WriteAsync(Encoding.UTF8.GetBytes("tty; echo \"term=$TERM\"; stty size\n"));
        string text = await ReadUntilAsync(console, "24 80", seen);
        Assert.Contains("/dev/pts/", text);
        Assert.Contains("term=vt100", text);

        await console.ResizeAsync(40, 120);
        seen.Clear();
        await console.WriteAsync(Encoding.UTF8.GetBytes("stty size\n"));
        Assert.Contains("40 120", await ReadUntilAsync(console, "40 120", seen));

        await console.WriteAsync(Encoding.UTF8.GetBytes("exit 7\n"));
        var end = await console.Completion.WaitAsync(Timeout);
        Assert.Equal(new ConsoleEnd(true, 7, null), end);
        // What is left (the echo of "exit 7") can still be read; then the output ends.
        var rest = new byte[4096];
        while (await console.Output.ReadAsync(rest).AsTask().WaitAsync(Timeout) > 0) { }
    }

    [Fact]
    public async Task The_shell_leads_its_own_session_with_the_terminal_as_its_controlling_terminal()
    {
        string file = Path.Combine(Path.GetTempPath(), $"console-sid-{Guid.NewGuid():N}");
        await using var console = await OpenAsync();
        // The typed line (done-""-marker) differs from what it prints (done--marker), so its echo does not end the wait.
        await console.WriteAsync(Encoding.UTF8.GetBytes($"ps -o sid=,tty= -p $$ > {file}; echo $$ >> {file}; echo done-\"\"-marker\n"));
        await ReadUntilAsync(console, "done--marker", new StringBuilder());
        string[] lines = File.ReadAllLines(file);
        File.Delete(file);
        string[] sidTty = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines[1].Trim(), sidTty[0]);         // session leader: its session id is its pid
        Assert.StartsWith("pts/", sidTty[1]);             // with the pseudo-terminal as its controlling terminal
    }

    [Fact]
    public async Task Send_line_prints_only_the_lines_output_and_status_without_prompt_or_echo()
    {
        await using var console = await OpenAsync(term: "dumb");
        var result = await ConsoleLine.RunAsync(console, "echo hi; echo oops >&2; false", TimeSpan.FromSeconds(20), Stopwatch.StartNew(), CancellationToken.None);
        Assert.Equal("hi\noops\n", result.Output);
        Assert.Equal(1, result.ExitCode);
    }

    [Fact]
    public async Task Send_line_works_through_bash_with_readline()
    {
        if (!File.Exists("/bin/bash")) return;
        await using var console = await OpenAsync(term: "dumb", shell: "/bin/bash");
        var result = await ConsoleLine.RunAsync(console, "echo hi; uname -s", TimeSpan.FromSeconds(20), Stopwatch.StartNew(), CancellationToken.None);
        Assert.Equal("hi\nLinux\n", result.Output);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Send_line_timeout_carries_the_partial_output()
    {
        await using var console = await OpenAsync(term: "dumb");
        var e = await Assert.ThrowsAsync<ConsoleTimeoutException>(() =>
            ConsoleLine.RunAsync(console, "echo partial; sleep 30", TimeSpan.FromSeconds(3), Stopwatch.StartNew(), CancellationToken.None));
        Assert.Equal("partial\n", e.PartialOutput);
        Assert.Equal(Microagent.Errors.ErrorKind.Timeout, e.Kind);
    }

    [Fact]
    public async Task A_line_that_exits_the_shell_ends_with_the_shells_status()
    {
        await using var console = await OpenAsync(term: "dumb");
        var result = await ConsoleLine.RunAsync(console, "echo bye; exit 4", TimeSpan.FromSeconds(20), Stopwatch.StartNew(), CancellationToken.None);
        Assert.Equal("bye\n", result.Output);
        Assert.Equal(4, result.ExitCode);
    }

    [Fact]
    public async Task Detaching_hangs_the_shell_up()
    {
        string marker = Path.Combine(Path.GetTempPath(), $"console-pid-{Guid.NewGuid():N}");
        var console = await OpenAsync();
        var seen = new StringBuilder();
        await console.WriteAsync(Encoding.UTF8.GetBytes($"echo $$ > {marker}; echo writ\"\"ten\n"));
        await ReadUntilAsync(console, "written\r\n", seen);
        int pid = int.Parse(File.ReadAllText(marker).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        File.Delete(marker);
        await console.DisposeAsync();
        Assert.False((await console.Completion).ShellExited);
        var clock = Stopwatch.StartNew();
        while (Directory.Exists($"/proc/{pid}") && clock.Elapsed < Timeout) await Task.Delay(50);
        Assert.False(Directory.Exists($"/proc/{pid}"), "the shell outlived its detached session");
    }

    [Fact]
    public async Task A_missing_shell_or_a_bad_request_is_refused_with_a_typed_error()
    {
        var missing = await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(async () =>
            await WorkspaceConsole.OpenAsync("test", await ConnectAsync(), new ConsoleRequest { Shell = "/no/such/shell" }, CancellationToken.None));
        Assert.Contains("/no/such/shell", missing.Message);
        var tooBig = await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(async () =>
            await WorkspaceConsole.OpenAsync("test", await ConnectAsync(), new ConsoleRequest { Rows = 0, Cols = 80 }, CancellationToken.None));
        Assert.Equal(Microagent.Errors.ErrorKind.Invalid, tooBig.Kind);
    }

    [Fact]
    public void Check_accepts_a_console_request_and_refuses_everything_else()
    {
        Assert.Null(ConsoleServer.Check(new Request { Type = ConsoleRequestTypes.Console, Console = new ConsoleRequest() }));
        Assert.Equal("invalid", ConsoleServer.Check(new Request { Type = RequestTypes.Exec })!.Value.Kind);
        Assert.Equal("unsupported", ConsoleServer.Check(new Request { Version = 99, Type = ConsoleRequestTypes.Console, Console = new() })!.Value.Kind);
        Assert.Equal("invalid", ConsoleServer.Check(new Request { Type = ConsoleRequestTypes.Console })!.Value.Kind);
        Assert.Equal("invalid", ConsoleServer.Check(new Request { Type = ConsoleRequestTypes.Console, Console = new() { Cols = 1001 } })!.Value.Kind);
        Assert.Equal("invalid", ConsoleServer.Check(new Request { Type = ConsoleRequestTypes.Console, Console = new() { Term = "x y" } })!.Value.Kind);
        Assert.Equal("invalid", ConsoleServer.Check(new Request { Type = ConsoleRequestTypes.Console, Console = new() { Env = ["A=\0"] } })!.Value.Kind);
    }

    [Fact]
    public void Shell_resolution_prefers_the_requested_shell_then_bash_then_sh()
    {
        Assert.Equal("/bin/zsh", TerminalShell.ResolveShell("/bin/zsh", _ => true));
        Assert.Throws<ExecStartException>(() => TerminalShell.ResolveShell("/bin/zsh", p => p != "/bin/zsh"));
        Assert.Throws<ExecStartException>(() => TerminalShell.ResolveShell("zsh", _ => true));
        Assert.Equal("/bin/bash", TerminalShell.ResolveShell(null, _ => true));
        Assert.Equal("/bin/sh", TerminalShell.ResolveShell(null, p => p == "/bin/sh"));
        Assert.Throws<ExecStartException>(() => TerminalShell.ResolveShell(null, _ => false));
    }
}
