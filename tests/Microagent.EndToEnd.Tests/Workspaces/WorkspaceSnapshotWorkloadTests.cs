using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// A workspace with a workload (<c>--exec</c>) through snapshots (docs/ARCHITECTURE.md "Snapshots", the workload): a capture
/// does not end it, and a restore brings back its process from memory, which is never started a second time; its result is
/// recorded when it ends.
/// </summary>
public sealed class WorkspaceSnapshotWorkloadTests
{
    private const string Name = "snap-wl";

    // Counts its starts on the disk (rolled back by the restore: one line from before the snapshot), keeps its pid in memory,
    // then waits for /dev/shm/go.
    private const string Workload =
        "echo start >> /root/starts; sync; echo $$ > /dev/shm/wl-pid; while [ ! -e /dev/shm/go ]; do sleep 0.2; done; echo \"starts $(wc -l < /root/starts)\"; exit 7";

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static CliResult Check(CliResult r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stdout}{r.Stderr}");
        return r;
    }

    private static async Task<string> ExecAsync(string script) => Check(await Ma("exec", Name, "--", "sh", "-c", script)).Stdout.Trim();

    [Fact]
    public async Task A_restored_workload_is_not_started_again_and_its_result_is_recorded_when_it_ends()
    {
        try
        {
            await Ma("delete", Name, "--force");
            Check(await Ma("create", Name, "--exec", Workload));
            Check(await Ma("start", Name));
            await Poll.UntilAsync(async () => (await Ma("exec", Name, "--", "test", "-s", "/dev/shm/wl-pid")).ExitCode == 0,
                TimeSpan.FromMinutes(2), "the workload to start");
            string pid = await ExecAsync("cat /dev/shm/wl-pid");

            // The capture resets every vsock connection, the workload's included: it keeps running and the supervisor re-attaches.
            Check(await Ma("snapshot", "create", Name, "--tag", "mid"));
            Assert.Equal("running", Json(Check(await Ma("status", Name, "--json"))).GetProperty("state").GetString());
            Assert.Equal("sh", await ExecAsync($"cat /proc/{pid}/comm"));

            Check(await Ma("halt", Name));
            var restored = Json(Check(await Ma("start", Name, "--from-snapshot", "mid", "--json")));
            Assert.Equal("running", restored.GetProperty("state").GetString());
            Assert.Equal("sh", await ExecAsync($"cat /proc/{pid}/comm"));
            Assert.Equal("1", await ExecAsync("wc -l < /root/starts"));

            await ExecAsync("touch /dev/shm/go");
            var waited = await MicroagentCli.RunAsync(["wait", Name, "--json"], timeoutSeconds: 300);
            Assert.True(waited.ExitCode is 0 or 7, waited.Stdout + waited.Stderr);
            await Poll.UntilAsync(async () => Json(await Ma("status", Name, "--json")).GetProperty("state").GetString() == "stopped",
                TimeSpan.FromMinutes(2), "the workspace to stop after its workload");
            var result = await Ma("result", Name, "--json");
            Assert.Equal(7, result.ExitCode);
            var r = Json(result);
            Assert.Equal("exited", r.GetProperty("status").GetString());
            Assert.Equal(7, r.GetProperty("exitCode").GetInt32());
            Assert.Equal("starts 1\n", r.GetProperty("stdout").GetString());
        }
        finally
        {
            await Ma("delete", Name, "--force");
        }
    }
}
