using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Cli;

/// <summary>Bad input gets a clear error, the documented exit code, and a structured error with --json.</summary>
public sealed class UsageTests
{
    [Fact]
    public async Task Unknown_flag_is_a_usage_error()
    {
        var r = await MicroagentCli.RunAsync(["run", "--no-such-flag", "--", "true"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--no-such-flag", r.Stderr);
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task Json_errors_are_structured()
    {
        var r = await MicroagentCli.RunAsync(["run", "--json", "--memory", "1", "--", "true"]);
        Assert.Equal(2, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal("invalid", error.GetProperty("kind").GetString());
        Assert.Equal("memory_mib 1 is out of range (128..65536)", error.GetProperty("message").GetString());
        Assert.Equal("memory_mib", error.GetProperty("field").GetString());
        Assert.Equal("--memory", error.GetProperty("flag").GetString());
        Assert.False(error.GetProperty("retryable").GetBoolean());
    }

    [Fact]
    public async Task Help_teaches_the_verbs()
    {
        var r = await MicroagentCli.RunAsync(["--help"]);
        Assert.Equal(0, r.ExitCode);
        foreach (string verb in new[] { "run", "kernel", "doctor" }) Assert.Contains(verb, r.Stdout);
        var run = await MicroagentCli.RunAsync(["run", "--help"]);
        Assert.Contains("--timeout", run.Stdout);
        Assert.Contains("Examples", run.Stdout);
        foreach (string verb in new[] { "pause", "resume", "connect" })
        {
            Assert.Contains(verb, r.Stdout);
            var help = await MicroagentCli.RunAsync([verb, "--help"]);
            Assert.Equal(0, help.ExitCode);
            Assert.Contains("Examples", help.Stdout);
            Assert.Contains($"microagent {verb} research", help.Stdout);
        }
        Assert.Contains("--reason", (await MicroagentCli.RunAsync(["pause", "--help"])).Stdout);
    }
}
