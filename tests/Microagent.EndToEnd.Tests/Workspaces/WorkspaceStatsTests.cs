using System.Text.Json;
using Microagent.EndToEnd.Tests.Networking;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// <c>stats</c> and <c>ps</c> through the real binary, real QEMU and the real guest (docs/ARCHITECTURE.md "Stats"): a busy loop in
/// the guest shows as at least 50 % of a host core, the memory figures are plausible, a <c>dd</c> grows the disk write bytes, a
/// loopback download grows the network bytes, <c>--follow --json</c> prints one document per sample and <c>ps --json</c> lists the
/// workspace. Every figure is waited for by polling stats, never by sleeping.
/// </summary>
public sealed class WorkspaceStatsTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static async Task<JsonElement> StatsAsync(string name, string interval = "500ms")
    {
        var r = await Ma("stats", name, "--json", "--interval", interval);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    /// <summary>Samples until <paramref name="holds"/> says a sample shows what is awaited; returns that sample.</summary>
    private static async Task<JsonElement> UntilAsync(string name, string interval, Func<JsonElement, bool> holds, TimeSpan limit, string what)
    {
        JsonElement last = default;
        await Poll.UntilAsync(async () => holds(last = await StatsAsync(name, interval)), limit, $"{what} (last sample: {last})");
        return last;
    }

    [Fact]
    public async Task A_busy_guest_shows_its_cpu_memory_disk_and_network_use()
    {
        const string name = "stats-busy";
        using var server = new LoopbackHttpServer("127.0.0.2", "allowed", blobBytes: 1024 * 1024);
        System.Diagnostics.Process? busy = null;
        try
        {
            Assert.Equal(0, (await Ma(["create", name, "--memory", "256", .. EgressWorkspace.Hosts])).ExitCode);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);

            var idle = await StatsAsync(name);
            Assert.Equal(name, idle.GetProperty("name").GetString());
            Assert.Equal("running", idle.GetProperty("state").GetString());
            Assert.True(Math.Abs((DateTimeOffset.UtcNow - idle.GetProperty("sampledAt").GetDateTimeOffset()).TotalSeconds) < 60);
            Assert.InRange(idle.GetProperty("intervalMs").GetInt64(), 400, 60_000);
            var host = idle.GetProperty("hostMemory");
            Assert.True(host.GetProperty("qemuRssBytes").GetInt64() > 16L << 20, host.ToString());
            Assert.InRange(host.GetProperty("qemuPssBytes").GetInt64(), 1, host.GetProperty("qemuRssBytes").GetInt64());
            Assert.True(host.GetProperty("supervisorRssBytes").GetInt64() > 0, host.ToString());
            var guest = idle.GetProperty("guestMemory");
            // MemTotal is the VM's memory less what the kernel keeps for itself: within 30 % of 256 MiB, never above it.
            Assert.InRange(guest.GetProperty("totalBytes").GetInt64(), 180L << 20, 256L << 20);
            Assert.InRange(guest.GetProperty("usedBytes").GetInt64(), 1, guest.GetProperty("totalBytes").GetInt64());
            Assert.Equal("root", idle.GetProperty("disks")[0].GetProperty("name").GetString());
            Assert.Equal("user", idle.GetProperty("network").GetProperty("mode").GetString());

            // ps lists it, with an uptime and the same figures.
            var ps = await Ma("ps", "--json", "--interval", "200ms");
            Assert.True(ps.ExitCode == 0, ps.Stderr);
            var listed = JsonDocument.Parse(ps.Stdout).RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
            Assert.Equal("running", listed.GetProperty("state").GetString());
            Assert.True(listed.GetProperty("uptimeSeconds").GetInt64() >= 0);
            Assert.True(listed.GetProperty("hostMemory").GetProperty("qemuRssBytes").GetInt64() > 0);
            var table = await Ma("ps", "--interval", "200ms");
            Assert.Contains(name, table.Stdout);
            Assert.Contains("CPU %", table.Stdout);
            Console.WriteLine(table.Stdout);

            // Disk: 32 MiB written and synced in the guest reach QEMU's block layer.
            long written = idle.GetProperty("diskWriteBytes").GetInt64();
            var dd = await Ma("exec", name, "--", "sh", "-c", "dd if=/dev/zero of=/root/blob bs=1M count=32 conv=fsync 2>&1");
            Assert.True(dd.ExitCode == 0, dd.Stdout + dd.Stderr);
            await UntilAsync(name, "200ms", s => s.GetProperty("diskWriteBytes").GetInt64() >= written + (32L << 20), TimeSpan.FromMinutes(2),
                "the disk write bytes to grow by 32 MiB");

            // Network: a 1 MiB download from a host loopback server through the egress broker.
            long received = idle.GetProperty("network").GetProperty("egressBytesIn").GetInt64();
            var get = await Ma("exec", name, "--timeout", "120s", "--", "sh", "-c", $"wget -q -O /dev/null http://allowed.test:{server.Port}/blob");
            Assert.True(get.ExitCode == 0, get.Stdout + get.Stderr);
            await UntilAsync(name, "200ms", s => s.GetProperty("network").GetProperty("egressBytesIn").GetInt64() >= received + (1L << 20), TimeSpan.FromMinutes(1),
                "the egress bytes in to grow by 1 MiB");

            // CPU: a busy loop (an exec that runs until its timeout or until it is stopped) holds one vCPU, i.e. one host core under TCG.
            busy = MicroagentCli.Start(["exec", name, "--timeout", "600s", "--", "sh", "-c", "while :; do :; done"]);
            var hot = await UntilAsync(name, "3s", s => s.GetProperty("cpu").GetProperty("percent").GetDouble() >= 50, TimeSpan.FromMinutes(5),
                "CPU % of at least 50 with a busy loop in the guest");
            Console.WriteLine($"idle CPU {idle.GetProperty("cpu").GetProperty("percent").GetDouble()} %, busy CPU {hot.GetProperty("cpu").GetProperty("percent").GetDouble()} %, " +
                $"QEMU RSS {host.GetProperty("qemuRssBytes").GetInt64() >> 20} MiB, guest MemTotal {guest.GetProperty("totalBytes").GetInt64() >> 20} MiB");

            // --follow --json: one document per line per sample, each later than the one before.
            using var follow = MicroagentCli.Start(["stats", name, "--follow", "--json", "--interval", "300ms"]);
            var times = new List<DateTimeOffset>();
            for (int i = 0; i < 2; i++)
            {
                string? line = await follow.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(1));
                Assert.NotNull(line);
                using var doc = JsonDocument.Parse(line);
                Assert.Equal(name, doc.RootElement.GetProperty("name").GetString());
                times.Add(doc.RootElement.GetProperty("sampledAt").GetDateTimeOffset());
            }
            Assert.True(times[1] > times[0]);
            follow.Kill();
        }
        finally
        {
            if (busy is { HasExited: false }) busy.Kill();
            busy?.Dispose();
            await Ma("delete", name, "--force");
        }
    }

    [Fact]
    public async Task A_workspace_that_is_not_running_has_no_stats_and_ps_leaves_it_out()
    {
        const string name = "stats-idle";
        try
        {
            Assert.Equal(0, (await Ma("create", name)).ExitCode);
            var stats = await Ma("stats", name, "--json");
            Assert.Equal(1, stats.ExitCode);
            var error = JsonDocument.Parse(stats.Stdout).RootElement.GetProperty("error");
            Assert.Equal("conflict", error.GetProperty("kind").GetString());
            Assert.Contains("prepared", error.GetProperty("message").GetString());
            Assert.Contains($"microagent start {name}", error.GetProperty("remediation").GetString());
            Assert.Equal("not_found", JsonDocument.Parse((await Ma("stats", "no-such-ws", "--json")).Stdout).RootElement.GetProperty("error").GetProperty("kind").GetString());
            var ps = await Ma("ps", "--json", "--interval", "100ms");
            Assert.True(ps.ExitCode == 0, ps.Stderr);
            Assert.DoesNotContain(JsonDocument.Parse(ps.Stdout).RootElement.EnumerateArray(), e => e.GetProperty("name").GetString() == name);
            var bad = await Ma("stats", name, "--interval", "10ms", "--json");
            Assert.Equal(2, bad.ExitCode);
            Assert.Equal("--interval", JsonDocument.Parse(bad.Stdout).RootElement.GetProperty("error").GetProperty("flag").GetString());
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
    }
}
