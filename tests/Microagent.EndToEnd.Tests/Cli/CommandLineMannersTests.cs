using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Cli;

/// <summary>
/// Command-line manners of the real binary, none of which boots a VM: durations and numbers refused in words, "did you mean",
/// groups without a subverb, short root help and examples in every verb's help, help that never acts, Docker flags refused.
/// </summary>
public sealed class CommandLineMannersTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Error(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error").Clone();

    [Theory]
    [InlineData("run", "--timeout", "5x")]
    [InlineData("exec", "--timeout", "soon")]
    [InlineData("wait", "--timeout", "-3s")]
    [InlineData("halt", "--timeout", "1.2.3")]
    [InlineData("create", "--ttl", "forever")]
    [InlineData("start", "--ttl", "10y")]
    [InlineData("start", "--wait-timeout", "x")]
    public async Task A_bad_duration_is_refused_in_words_naming_the_flag(string verb, string flag, string value)
    {
        string[] args = verb is "run" ? [verb, flag, value, "--", "true"] : verb is "exec" ? [verb, "ws", flag, value, "--", "true"] : [verb, "ws", flag, value];
        foreach (bool json in new[] { false, true })
        {
            var r = await Ma(json ? ["--json", .. args] : args);
            Assert.Equal(2, r.ExitCode);
            string text = json ? Error(r).GetProperty("message").GetString()! : r.Stderr;
            Assert.Contains($"{flag}: '{value}' is not a duration", text);
            Assert.Contains("300ms, 30s, 5m, 1h", text);
            Assert.DoesNotContain("System.", r.Stdout + r.Stderr);
            if (json) Assert.Equal("invalid", Error(r).GetProperty("kind").GetString());
        }
    }

    [Theory]
    [InlineData("run", "--memory", "lots")]
    [InlineData("run", "--cpus", "1.5")]
    [InlineData("create", "--size-mib", "big")]
    [InlineData("exec", "--max-output", "99999999999999999999")]
    public async Task A_bad_number_is_refused_in_words(string verb, string flag, string value)
    {
        string[] args = verb is "run" ? [verb, flag, value, "--", "true"] : verb is "exec" ? [verb, "ws", flag, value, "--", "true"] : [verb, "ws", flag, value];
        var r = await Ma(args);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"{flag}: '{value}' is not a whole number", r.Stderr);
        Assert.DoesNotContain("System.", r.Stderr);
    }

    [Theory]
    [InlineData(new[] { "rnu", "--", "true" }, "unknown command 'rnu' for `microagent`", "did you mean `microagent run`?")]
    [InlineData(new[] { "imag", "list" }, "unknown command 'imag'", "did you mean `microagent image`?")]
    [InlineData(new[] { "image", "tga", "a", "b" }, "unknown command 'tga' for `microagent image`", "did you mean `microagent image tag`?")]
    [InlineData(new[] { "kernel", "chek" }, "unknown command 'chek' for `microagent kernel`", "did you mean `microagent kernel check`?")]
    [InlineData(new[] { "prof" }, "unknown command 'prof'", "did you mean `microagent profiles`?")]
    [InlineData(new[] { "start", "ws", "--wiat" }, "unknown option '--wiat'", "did you mean `microagent start --wait`?")]
    [InlineData(new[] { "run", "--timout", "3", "--", "true" }, "unknown option '--timout' for `microagent run`", "did you mean `--timeout`?")]
    public async Task An_unknown_verb_or_flag_gets_did_you_mean(string[] args, string message, string hint)
    {
        var r = await Ma(args);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Contains(hint, r.Stderr);
        var json = await Ma(["--json", .. args]);
        Assert.Contains(hint, Error(json).GetProperty("remediation").GetString());
    }

    [Theory]
    [InlineData("image", "tag")]
    [InlineData("kernel", "check")]
    [InlineData("registry", "login")]
    [InlineData("serve", "mcp")]
    public async Task A_group_without_its_subverb_prints_its_help(string group, string sub)
    {
        var r = await Ma(group);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains($"microagent {group} [command]", r.Stdout);
        Assert.Contains(sub, r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public async Task The_root_help_is_one_line_per_verb_and_every_verb_help_has_examples()
    {
        var root = await Ma("--help");
        Assert.Equal(0, root.ExitCode);
        var lines = root.Stdout.Split('\n');
        int commands = Array.FindIndex(lines, l => l.StartsWith("Commands:", StringComparison.Ordinal));
        var verbs = lines.Skip(commands + 1).TakeWhile(l => l.Trim().Length > 0).ToList();
        Assert.True(verbs.Count >= 20, root.Stdout);
        Assert.All(verbs, l => Assert.Matches(@"^  [a-z]", l)); // no continuation lines: one line per verb
        Assert.DoesNotContain("Examples", root.Stdout);
        Assert.True(lines.Length < 60, $"root help is {lines.Length} lines");

        foreach (string[] verb in new string[][]
        {
            ["run"], ["create"], ["start"], ["exec"], ["cp"], ["status"], ["list"], ["logs"], ["events"], ["result"], ["wait"], ["halt"], ["kill"],
            ["delete"], ["gc"], ["profiles"], ["doctor"], ["version"], ["image", "pull"], ["image", "list"], ["image", "inspect"], ["image", "tag"],
            ["image", "delete"], ["image", "prune"], ["kernel", "install"], ["kernel", "list"], ["kernel", "verify"], ["kernel", "check"],
            ["registry", "login"], ["registry", "logout"], ["registry", "list"],
        })
        {
            var help = await Ma([.. verb, "--help"]);
            Assert.Equal(0, help.ExitCode);
            Assert.True(help.Stdout.Contains("Examples:", StringComparison.Ordinal), $"`microagent {string.Join(' ', verb)} --help` has no examples");
        }
    }

    [Fact]
    public async Task Help_never_performs_the_operation()
    {
        string state = Path.Combine("/tmp", $"ma-e2e-help-{Environment.ProcessId}");
        try
        {
            foreach (string[] args in new string[][]
            {
                ["run", "registry.invalid/nothing:1", "uname", "--help"], ["run", "--help", "--", "true"], ["create", "h1", "--help"],
                ["image", "prune", "--purge", "--yes", "--help"], ["kernel", "install", "--from", "/nonexistent", "-h"], ["delete", "a", "b", "--help"],
            })
            {
                var r = await MicroagentCli.RunAsync(["--json", .. args], stateDir: state);
                Assert.Equal(0, r.ExitCode);
                Assert.Contains("Usage:", r.Stdout);
                Assert.Equal("", r.Stderr);
            }
            Assert.False(Directory.Exists(Path.Combine(state, "workspaces", "h1")));
            Assert.False(Directory.Exists(Path.Combine(state, "kernels")));
            Assert.False(Directory.Exists(Path.Combine(state, "images")));
        }
        finally
        {
            if (Directory.Exists(state)) Directory.Delete(state, true);
        }
    }

    [Theory]
    [InlineData(new[] { "--privileged" }, "--privileged has no meaning here", "drop --privileged")]
    [InlineData(new[] { "--device", "/dev/kvm" }, "host devices are not passed into workspaces", "microagent cp")]
    [InlineData(new[] { "--pid", "host" }, "its own process table", "ps")]
    [InlineData(new[] { "--network", "host" }, "never shares the host's network", "user")]
    [InlineData(new[] { "--net", "bridge" }, "unknown network mode", "no network interface")]
    [InlineData(new[] { "-v", "/tmp:/data" }, "host directories are not shared", "microagent cp")]
    [InlineData(new[] { "--volume", "./src:/src:ro" }, "host directories are not shared", "microagent cp")]
    [InlineData(new[] { "--mount", "type=bind,src=/tmp,dst=/x" }, "host directories are not shared", "microagent cp")]
    public async Task Docker_flags_with_no_meaning_here_are_refused_with_guidance(string[] flag, string why, string instead)
    {
        foreach (string verb in new[] { "run", "create" })
        {
            string[] args = verb == "run" ? ["run", .. flag, "registry.invalid/never:1", "true"] : ["create", "dockerish", .. flag];
            var r = await Ma(["--json", .. args]);
            Assert.Equal(2, r.ExitCode);
            var e = Error(r);
            Assert.Equal("invalid", e.GetProperty("kind").GetString());
            Assert.Contains(why, e.GetProperty("message").GetString());
            Assert.Contains(instead, e.GetProperty("remediation").GetString());
        }
        Assert.False(Directory.Exists(Path.Combine(MicroagentCli.StateDir, "workspaces", "dockerish")));
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }
}
