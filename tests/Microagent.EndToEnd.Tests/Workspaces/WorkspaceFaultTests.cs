using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// Host and guest faults through the real binary, real QEMU (TCG) and the real guest kernel (docs/ARCHITECTURE.md "Faults"):
/// a full host disk pauses the workspace truthfully and it continues once space is freed, losing nothing; a guest kernel panic
/// is failed with the panic's lines and a reboot attempt has its own reason; the OOM killer's choice is named and the workspace stays healthy.
/// </summary>
public sealed class WorkspaceFaultTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static async Task<JsonElement> StatusAsync(string name) => Json(await Ma("status", name, "--json"));

    private static void Run(string program, params string[] args)
    {
        using var p = Process.Start(program, args);
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{program} {string.Join(' ', args)} exited {p.ExitCode}");
    }

    /// <summary>What the guest writes: 32-byte lines, <paramref name="bytes"/> in all (non-zero, so qcow2 cannot elide it).</summary>
    private static string Sha256OfFill(long bytes)
    {
        byte[] line = Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcde\n");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long n = 0; n < bytes; n += line.Length) hash.AppendData(line);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    [Fact]
    public async Task A_full_host_disk_pauses_with_the_reason_fails_exec_and_cp_at_once_and_continues_without_loss_once_space_is_freed()
    {
        const string name = "diskfull";
        const long fill = 80_000_000; // more than the 48 MiB tmpfs holds
        string dir = Path.Combine(MicroagentCli.StateDir, "workspaces", name);
        Directory.CreateDirectory(dir);
        Run("mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", dir);
        Process? writer = null;
        try
        {
            Assert.Equal(0, (await Ma("create", name, "--size-mib", "1024")).ExitCode);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var before = await StatusAsync(name);
            Assert.True(before.GetProperty("stateDirFreeBytes").GetInt64() is > 0 and <= 48L << 20);

            writer = MicroagentCli.Start(["exec", name, "--", "sh", "-c",
                $"yes 0123456789abcdef0123456789abcde | head -c {fill} > /root/fill && sync && echo written"]);
            var writerOut = writer.StandardOutput.ReadToEndAsync();
            var writerErr = writer.StandardError.ReadToEndAsync();
            JsonElement paused = default;
            await Poll.UntilAsync(async () => (paused = await StatusAsync(name)).GetProperty("state").GetString() == "paused",
                TimeSpan.FromSeconds(180), "QEMU to stop the VM on the full host disk");
            Assert.Equal("host_disk_full", paused.GetProperty("pauseCause").GetString());
            Assert.StartsWith("host disk full: ", paused.GetProperty("detail").GetString());
            Assert.Contains($"free on the filesystem of {dir}", paused.GetProperty("detail").GetString());
            Assert.True(paused.GetProperty("stateDirFreeBytes").GetInt64() < 16L << 20);
            var events = (await Ma("events", name, "--json")).Stdout;
            Assert.Contains("\"paused\"", events);

            var clock = Stopwatch.StartNew();
            var exec = await Ma("exec", name, "--json", "--", "true");
            var cp = await Ma("cp", "--json", "/etc/hostname", $"{name}:/root/hostname");
            clock.Stop();
            Assert.NotEqual(0, exec.ExitCode);
            Assert.Equal("resource_exhausted", Json(exec).GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains("free space", Json(exec).GetProperty("error").GetProperty("remediation").GetString());
            Assert.Equal("resource_exhausted", Json(cp).GetProperty("error").GetProperty("kind").GetString());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"exec and cp took {clock.Elapsed.TotalSeconds:0.0} s on a paused workspace");
            Assert.False(writer.HasExited, "the guest's write ended while the VM was stopped");

            Run("mount", "-o", "remount,size=512m", dir); // frees space without deleting anything
            await Poll.UntilAsync(async () => (await StatusAsync(name)).GetProperty("state").GetString() == "running",
                TimeSpan.FromSeconds(60), "the supervisor to continue the guest");
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(300))) await writer.WaitForExitAsync(cts.Token);
            Assert.True(writer.ExitCode == 0, $"writer exited {writer.ExitCode}: {await writerErr}");
            Assert.Equal("written", (await writerOut).Trim());

            var sum = await Ma("exec", name, "--", "sha256sum", "/root/fill");
            if (sum.ExitCode != 0) Assert.Fail($"sha256sum exited {sum.ExitCode}: {sum.Stderr}\n{File.ReadAllText(Path.Combine(dir, "supervisor.log"))}");
            Assert.StartsWith(Sha256OfFill(fill) + " ", sum.Stdout);
            var running = await StatusAsync(name);
            Assert.False(running.TryGetProperty("pauseCause", out var cause) && cause.ValueKind == JsonValueKind.String);
            Assert.Contains("resumed", running.GetProperty("detail").GetString());
        }
        finally
        {
            if (writer is { HasExited: false }) writer.Kill();
            writer?.Dispose();
            await Ma("delete", name, "--force");
            using (var umount = Process.Start("umount", [dir])) umount.WaitForExit();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
        Assert.Empty(MicroagentCli.QemuProcessesUnder(dir + "/"));
    }

    [Fact]
    public async Task A_guest_kernel_panic_is_failed_with_the_panic_lines_never_a_power_off()
    {
        const string name = "panicky";
        try
        {
            Assert.Equal(0, (await Ma("create", name)).ExitCode);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var crash = await Ma("exec", name, "--json", "--timeout", "30", "--", "sh", "-c", "echo c > /proc/sysrq-trigger");
            Assert.NotEqual(0, crash.ExitCode);
            Assert.Contains("guest kernel panic", Json(crash).GetProperty("error").GetProperty("message").GetString()); // the exec says why
            JsonElement s = default;
            await Poll.UntilAsync(async () => (s = await StatusAsync(name)).GetProperty("state").GetString() == "failed",
                TimeSpan.FromSeconds(60), "the panic to be recorded");
            string detail = s.GetProperty("detail").GetString()!;
            Assert.StartsWith("guest kernel panic:", detail);
            Assert.Contains("Kernel panic - not syncing: sysrq triggered crash", detail);
            Assert.DoesNotContain("powered itself off", detail);
            string log = File.ReadAllText(Path.Combine(MicroagentCli.StateDir, "workspaces", name, "supervisor.log"));
            Assert.Contains("GUEST_PANICKED", log); // the pvpanic device reported it, not only the serial log

            // The disk is intact: it starts again. A reboot request from inside is its own reason (workspaces do not reboot).
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            await Ma("exec", name, "--timeout", "30", "--", "reboot", "-f");
            await Poll.UntilAsync(async () => (s = await StatusAsync(name)).GetProperty("state").GetString() == "failed",
                TimeSpan.FromSeconds(60), "the reboot attempt to be recorded");
            Assert.Contains("tried to reboot", s.GetProperty("detail").GetString());
        }
        finally { await Ma("delete", name, "--force"); }
    }

    [Fact]
    public async Task An_exec_killed_by_the_oom_killer_says_so_and_the_workspace_stays_healthy()
    {
        const string name = "hungry";
        try
        {
            Assert.Equal(0, (await Ma("create", name, "--memory", "256")).ExitCode);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var hog = await Ma("exec", name, "--json", "--timeout", "120", "--", "awk", "BEGIN { s = \"xxxxxxxxxxxxxxxx\"; while (1) s = s s }");
            var r = Json(hog);
            Assert.Equal("signaled", r.GetProperty("status").GetString());
            Assert.Equal(9, r.GetProperty("signal").GetInt32());
            Assert.True(r.GetProperty("oomKilled").GetBoolean());
            Assert.Contains("OOM killer", r.GetProperty("note").GetString());

            var ok = await Ma("exec", name, "--", "echo", "alive");
            Assert.Equal(0, ok.ExitCode);
            Assert.Equal("alive", ok.Stdout.Trim());
            Assert.Equal("running", (await StatusAsync(name)).GetProperty("state").GetString());
            var quiet = Json(await Ma("exec", name, "--json", "--", "true"));
            Assert.False(quiet.GetProperty("oomKilled").GetBoolean());
        }
        finally { await Ma("delete", name, "--force"); }
    }
}
