using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// <c>pause</c> and <c>resume</c> through the real binary, real QEMU (TCG) and the real guest (docs/ARCHITECTURE.md "Pause and resume"):
/// exec and cp are refused with <c>conflict</c> while paused and work after resume; the guest's wall clock, which stands still
/// while the vCPUs are frozen, is within 2 s of the host's after resume.
/// </summary>
public sealed class WorkspacePauseTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    /// <summary>
    /// How far the guest's wall clock is from the host's: the guest's <c>date +%s</c> (whole seconds: the image's date has no
    /// %N) against the host clock before and after the exec; 0 when the guest's second overlaps that window.
    /// </summary>
    private static async Task<TimeSpan> GuestClockSkewAsync(string name)
    {
        var before = DateTimeOffset.UtcNow;
        var r = await Ma("exec", name, "--", "date", "+%s");
        var after = DateTimeOffset.UtcNow;
        Assert.True(r.ExitCode == 0, r.Stderr);
        var guestFrom = DateTimeOffset.FromUnixTimeSeconds(long.Parse(r.Stdout.Trim(), CultureInfo.InvariantCulture));
        var guestTo = guestFrom.AddSeconds(1);
        if (guestTo < before) return guestTo - before;
        if (guestFrom > after) return guestFrom - after;
        return TimeSpan.Zero;
    }

    [Fact]
    public async Task Exec_and_cp_are_refused_while_paused_and_work_after_resume_with_the_guest_clock_set_from_the_host()
    {
        const string name = "pausing";
        try
        {
            Assert.Equal(0, (await Ma("create", name)).ExitCode);
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            Assert.Equal(0, (await Ma("exec", name, "--", "sh", "-c", "echo before > /tmp/kept")).ExitCode);

            var clock = Stopwatch.StartNew();
            var pause = await Ma("pause", name, "--reason", "waiting for review", "--json");
            long pauseMs = clock.ElapsedMilliseconds;
            Assert.True(pause.ExitCode == 0, pause.Stderr);
            var paused = Json(pause);
            Assert.Equal("paused", paused.GetProperty("state").GetString());
            Assert.Equal("user", paused.GetProperty("pauseCause").GetString());
            Assert.Equal("paused on request: waiting for review", paused.GetProperty("detail").GetString());
            Assert.Equal(0, (await Ma("pause", name)).ExitCode); // already paused: no-op

            var exec = await Ma("exec", name, "--json", "--", "true");
            Assert.NotEqual(0, exec.ExitCode);
            Assert.Equal("conflict", Json(exec).GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains($"microagent resume {name}", Json(exec).GetProperty("error").GetProperty("remediation").GetString());
            var cp = await Ma("cp", "--json", "/etc/hostname", $"{name}:/root/hostname");
            Assert.NotEqual(0, cp.ExitCode);
            Assert.Equal("conflict", Json(cp).GetProperty("error").GetProperty("kind").GetString());
            var start = await Ma("start", name, "--json");
            Assert.Equal("conflict", Json(start).GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains($"microagent resume {name}", Json(start).GetProperty("error").GetProperty("remediation").GetString());

            // The vCPUs stay frozen for this long: without the host setting it, the guest clock would lag by about as much.
            await Task.Delay(TimeSpan.FromSeconds(5));

            clock.Restart();
            var resume = await Ma("resume", name, "--json");
            long resumeMs = clock.ElapsedMilliseconds;
            Assert.True(resume.ExitCode == 0, resume.Stderr);
            var resumed = Json(resume);
            Assert.Equal("running", resumed.GetProperty("state").GetString());
            Assert.Contains("guest clock set from the host", resumed.GetProperty("detail").GetString());
            Assert.False(resumed.TryGetProperty("pauseCause", out var cause) && cause.ValueKind == JsonValueKind.String);

            var skew = await GuestClockSkewAsync(name);
            Assert.True(Math.Abs(skew.TotalSeconds) < 2, $"guest clock is {skew.TotalSeconds:0.000} s off the host's after resume");
            var kept = await Ma("exec", name, "--", "cat", "/tmp/kept");
            Assert.Equal("before", kept.Stdout.Trim()); // memory (a tmpfs file) survived the pause
            Assert.Equal(0, (await Ma("cp", "/etc/hostname", $"{name}:/root/hostname")).ExitCode);
            Assert.Equal(0, (await Ma("resume", name)).ExitCode); // running: no-op

            var events = (await Ma("events", name, "--json")).Stdout;
            Assert.Contains("paused on request: waiting for review", events);
            Console.WriteLine($"pause CLI round trip {pauseMs} ms, resume CLI round trip {resumeMs} ms, clock skew after resume {skew.TotalMilliseconds:0} ms");
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
    }

    [Fact]
    public async Task Pause_of_a_workspace_that_is_not_running_and_resume_of_one_that_is_not_paused_are_conflicts()
    {
        const string name = "pause-idle";
        try
        {
            Assert.Equal(0, (await Ma("create", name)).ExitCode);
            var pause = await Ma("pause", name, "--json");
            Assert.NotEqual(0, pause.ExitCode);
            Assert.Equal("conflict", Json(pause).GetProperty("error").GetProperty("kind").GetString());
            var resume = await Ma("resume", name, "--json");
            Assert.Equal("conflict", Json(resume).GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains("not paused", Json(resume).GetProperty("error").GetProperty("message").GetString());
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
    }
}
