using System.Diagnostics;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// The console's containment (docs/ARCHITECTURE.md "Console"): a paused workspace refuses connect (<c>conflict</c>); severing
/// closes a live session at once and refuses new ones until the next start. Its own workspace: a sever lasts the boot.
/// </summary>
public sealed class WorkspaceConsoleSeverTests
{
    private const string Name = "console-sever";

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    [Fact]
    public async Task Paused_is_a_conflict_and_a_sever_closes_the_live_session_and_refuses_new_ones_until_the_next_start()
    {
        var manager = new WorkspaceManager(new StatePaths(MicroagentCli.StateDir));
        try
        {
            Assert.Equal(0, (await Ma("create", Name)).ExitCode);
            var stopped = await Ma("connect", Name, "--send", "true", "--json");
            Assert.Equal("conflict", Json(stopped).GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains("microagent start", Json(stopped).GetProperty("error").GetProperty("remediation").GetString());
            Assert.Equal(0, (await Ma("start", Name)).ExitCode);

            Assert.Equal(0, (await Ma("pause", Name)).ExitCode);
            var paused = await Ma("connect", Name, "--send", "true", "--json");
            Assert.Equal("conflict", Json(paused).GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains("microagent resume", Json(paused).GetProperty("error").GetProperty("remediation").GetString());
            Assert.Equal(0, (await Ma("resume", Name)).ExitCode);

            await using var session = await manager.ConnectAsync(Name);
            await session.WriteAsync("echo re''ady\n"u8.ToArray()); // prints "ready": its echo does not
            var buffer = new byte[4096];
            string seen = "";
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
                while (!seen.Contains("ready\r\n", StringComparison.Ordinal))
                    seen += System.Text.Encoding.UTF8.GetString(buffer, 0, await session.Output.ReadAsync(buffer, timeout.Token));

            var clock = Stopwatch.StartNew();
            var severed = await manager.SeverConsoleAsync(Name);
            var end = await session.Completion.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the session closed {clock.ElapsedMilliseconds} ms after the sever");
            Assert.Equal(new ConsoleStatus(true, 0, 1), severed);
            Assert.False(end.ShellExited);

            var refused = await Assert.ThrowsAsync<MicroagentException>(() => manager.ConnectAsync(Name));
            Assert.Equal(ErrorKind.Conflict, refused.Kind);
            Assert.Contains("severed", refused.Message);
            var cli = await Ma("connect", Name, "--send", "true", "--json");
            Assert.Equal("conflict", Json(cli).GetProperty("error").GetProperty("kind").GetString());
            Assert.Equal("running", Json(await Ma("status", Name, "--json")).GetProperty("state").GetString());
        }
        finally
        {
            await Ma("kill", Name);
            await Ma("delete", Name);
        }
    }
}
