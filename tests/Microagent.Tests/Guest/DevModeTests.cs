using System.Diagnostics;
using Microagent.Guest.Exec;
using Microagent.Protocol;
using Microagent.Tests.Guest.Server;

namespace Microagent.Tests.Guest;

/// <summary>
/// The real agent program in dev mode (<c>--listen-unix</c>) as its own process: there it is the
/// single <c>waitpid(-1)</c> reaper and a child subreaper, so orphans of workloads come back to it.
/// </summary>
public sealed class DevModeTests
{
    [Fact]
    public async Task AgentReapsOrphansAndShutsDown()
    {
        string dll = typeof(ExecEngine).Assembly.Location;
        string sock = Path.Combine(Path.GetTempPath(), $"agent-dev-{Guid.NewGuid():N}.sock");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--listen-unix");
        psi.ArgumentList.Add(sock);
        psi.Environment["DOTNET_ROLL_FORWARD"] = "Major"; // net9 assembly on the installed net10 runtime
        using Process agent = Process.Start(psi)!;
        try
        {
            // The agent logs this line once its socket listens.
            using (var ready = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                string? line;
                while ((line = await agent.StandardError.ReadLineAsync(ready.Token)) is not null && !line.Contains($"listening on unix:{sock}")) { }
                Assert.True(line is not null, "the dev-mode agent exited before listening");
            }
            _ = agent.StandardError.ReadToEndAsync();
            // Each exec leaves an orphan (the backgrounded sleep) that is reparented to the agent.
            for (int i = 0; i < 3; i++)
            {
                List<Response> r = await AgentServerTests.CallAsync(sock, new Request
                {
                    Type = RequestTypes.Exec,
                    Exec = new ExecRequest { Argv = ["sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"] },
                });
                Assert.Equal(ExecStatuses.Exited, Assert.Single(r).Result!.Status);
            }
            // Neither running orphans nor zombies remain once the orphans' sleeps end.
            await Poll.UntilAsync(() => Children(agent.Id).Count == 0, TimeSpan.FromSeconds(10), "the agent's orphans to be reaped");

            List<Response> bye = await AgentServerTests.CallAsync(sock, new Request { Type = RequestTypes.Shutdown });
            Assert.Equal(ResponseTypes.Ok, Assert.Single(bye).Type);
            Assert.True(agent.WaitForExit(10_000));
            Assert.Equal(0, agent.ExitCode);
        }
        finally
        {
            if (!agent.HasExited) agent.Kill();
            File.Delete(sock);
        }
    }

    private static List<(int Pid, char State)> Children(int parent)
    {
        var list = new List<(int, char)>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(f[1]) == parent) list.Add((pid, f[0][0]));
            }
            catch (IOException) { }
        }
        return list;
    }
}
