using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Cli;

/// <summary>
/// The Docker-style forms and the verbs added for parity with the original's documented usage, through the real binary:
/// <c>run IMAGE CMD</c>, <c>--rm</c>, <c>--dry-run</c>, several names per verb, <c>--reason</c>, <c>start --wait</c>,
/// <c>--shell</c>, <c>image tag|delete|prune --purge</c>, <c>kernel check|verify --path|install --from|--url</c>, <c>profiles</c>.
/// </summary>
public sealed class ParityTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement.Clone();

    private static string? FindKernelDeb() =>
        Directory.Exists("/var/cache/microagent/kernel") ? Directory.GetFiles("/var/cache/microagent/kernel", "linux-image-*.deb").FirstOrDefault() : null;

    [Fact]
    public async Task Run_takes_the_image_then_the_command_with_its_flags_as_docker_does()
    {
        var r = await Ma("run", "default", "uname", "-s");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("Linux\n", r.Stdout);

        // Everything after IMAGE is the guest's, even words that are microagent flags.
        var flags = await Ma("run", "--rm", "--memory", "256", "default", "echo", "--memory", "-x");
        Assert.True(flags.ExitCode == 0, flags.Stderr);
        Assert.Equal("--memory -x\n", flags.Stdout);
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));

        var both = await Ma("run", "--rm", "--keep", "--json", "--", "true");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("--rm and --keep", Json(both).GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Dry_runs_print_the_plan_and_change_nothing()
    {
        var run = await Ma("run", "--dry-run", "--json", "--memory", "512", "default", "cat", "/etc/os-release");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var plan = Json(run);
        Assert.Equal(("run", "default", 512, 1), (plan.GetProperty("operation").GetString(), plan.GetProperty("image").GetString(),
            plan.GetProperty("memoryMiB").GetInt32(), plan.GetProperty("cpus").GetInt32()));
        Assert.Equal(new[] { "cat", "/etc/os-release" }, plan.GetProperty("command").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("vda", plan.GetProperty("disks")[0].GetProperty("device").GetString());
        Assert.StartsWith("user", plan.GetProperty("network").GetString());

        var create = await Ma("create", "planned", "--dry-run", "--profile", "small", "--ttl", "30m", "--vsock", "5000=8080");
        Assert.True(create.ExitCode == 0, create.Stderr);
        foreach (string part in new[] { "dry run: create planned", "image      default", "kernel", "small: 512 MiB, 2 vCPU", "ttl 1800 s idle", "disk       vda rw", "network    user (default policy)", "vsock      5000=127.0.0.1:8080" })
            Assert.Contains(part, create.Stdout);
        var status = await Ma("status", "planned", "--json");
        Assert.Equal("not_found", Json(status).GetProperty("error").GetProperty("kind").GetString());
        var bad = await Ma("create", "planned", "--dry-run", "--memory", "1", "--json");
        Assert.Equal(("invalid", "--memory"), (Json(bad).GetProperty("error").GetProperty("kind").GetString(), Json(bad).GetProperty("error").GetProperty("flag").GetString()));
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task Several_names_per_verb_report_each_outcome_and_a_reason_reaches_the_events()
    {
        string[] names = ["multi-a", "multi-b"];
        try
        {
            foreach (string n in names)
            {
                var c = await Ma("create", n, "--shell", "/bin/ash", "--ttl", "10m");
                Assert.True(c.ExitCode == 0, c.Stderr);
            }
            var st = Json(await Ma("status", names[0], "--json"));
            Assert.Equal("/bin/ash", st.GetProperty("config").GetProperty("shell").GetString());
            Assert.Equal(600, st.GetProperty("config").GetProperty("ttlSeconds").GetInt32());

            var start = await Ma("start", names[0]);
            Assert.True(start.ExitCode == 0, start.Stderr);
            var halt = await Ma("halt", names[0], names[1], "--reason", "end of the experiment", "--timeout", "30s");
            Assert.True(halt.ExitCode == 0, halt.Stdout + halt.Stderr);
            Assert.Contains($"{names[0]} is halted: halted on request: end of the experiment", halt.Stdout);
            Assert.Contains($"{names[1]} is prepared", halt.Stdout);
            var events = await Ma("events", names[0], "--json");
            Assert.Contains("halted on request: end of the experiment", events.Stdout);

            var kill = await Ma("kill", names[1], "no-such-ws", "--reason", "cleanup", "--json");
            Assert.Equal(1, kill.ExitCode);
            var results = Json(kill).GetProperty("results").EnumerateArray().ToList();
            Assert.Equal(1, Json(kill).GetProperty("failed").GetInt32());
            Assert.True(results[0].GetProperty("ok").GetBoolean());
            Assert.Equal("not_found", results[1].GetProperty("error").GetProperty("kind").GetString());

            var delete = await Ma("delete", names[0], names[1], "never-was", "--json");
            Assert.True(delete.ExitCode == 0, delete.Stdout);
            var deleted = Json(delete).GetProperty("results").EnumerateArray().Select(x => x.GetProperty("detail").GetString()).ToList();
            Assert.Equal(new[] { $"deleted {names[0]}", $"deleted {names[1]}", "no workspace named 'never-was'; nothing to delete" }, deleted);
        }
        finally
        {
            await Ma(["delete", .. names, "--force"]);
        }
    }

    [Fact]
    public async Task Start_wait_blocks_until_the_workload_ends()
    {
        const string name = "waiter";
        try
        {
            Assert.Equal(0, (await Ma("create", name, "--exec", "echo done-waiting")).ExitCode);
            var bad = await Ma("start", name, "--wait-timeout", "5m");
            Assert.Equal(2, bad.ExitCode);
            var r = await Ma("start", name, "--wait", "--wait-timeout", "3m", "--json");
            Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
            Assert.Equal("stopped", Json(r).GetProperty("state").GetString());
            var result = Json(await Ma("result", name, "--json"));
            Assert.Equal("done-waiting\n", result.GetProperty("stdout").GetString());
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
    }

    [Fact]
    public async Task Image_tag_delete_and_prune_purge()
    {
        var run = await Ma("run", "--", "true"); // the default image's baseline exists
        Assert.Equal(0, run.ExitCode);
        var tag = await Ma("image", "tag", "default", "e2e-tools:dev", "--json");
        Assert.True(tag.ExitCode == 0, tag.Stdout + tag.Stderr);
        string target = Json(tag).GetProperty("target").GetString()!;
        string digest = Json(tag).GetProperty("digest").GetString()!;
        var inspect = Json(await Ma("image", "inspect", target));
        Assert.Equal(digest, inspect.GetProperty("digest").GetString());
        var tagged = await Ma("run", target, "echo", "via-tag");
        Assert.Equal("via-tag\n", tagged.Stdout);

        var rm = await Ma("image", "delete", target, "--json");
        Assert.True(rm.ExitCode == 0, rm.Stdout);
        Assert.Equal(JsonValueKind.Null, Json(rm).GetProperty("baseline").ValueKind); // untagged: "default" still names it
        Assert.Equal("not_found", Json(await Ma("image", "inspect", target, "--json")).GetProperty("error").GetProperty("kind").GetString());

        var unconfirmed = await Ma("image", "prune", "--purge", "--json");
        Assert.Equal(2, unconfirmed.ExitCode);
        Assert.Contains("--yes", Json(unconfirmed).GetProperty("error").GetProperty("message").GetString());

        string state = Path.Combine("/tmp", $"ma-e2e-purge-{Environment.ProcessId}");
        try
        {
            Assert.Equal(0, (await MicroagentCli.RunAsync(["image", "pull", "default"], stateDir: state)).ExitCode);
            var purge = await MicroagentCli.RunAsync(["image", "prune", "--purge", "--yes", "--json"], stateDir: state);
            Assert.True(purge.ExitCode == 0, purge.Stdout);
            Assert.Single(Json(purge).GetProperty("removedBaselines").EnumerateArray());
            Assert.Equal("[]", (await MicroagentCli.RunAsync(["image", "list", "--json"], stateDir: state)).Stdout.Trim());
        }
        finally
        {
            if (Directory.Exists(state)) Directory.Delete(state, true);
        }
    }

    [Fact]
    public async Task Kernel_check_verify_path_and_install_from_a_path_and_a_loopback_url()
    {
        string deb = FindKernelDeb() ?? throw new InvalidOperationException("no kernel package in /var/cache/microagent/kernel: run scripts/install.sh");
        string sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(deb)));
        string state = Path.Combine("/tmp", $"ma-e2e-kernel-{Environment.ProcessId}");
        Task<CliResult> K(params string[] args) => MicroagentCli.RunAsync(["kernel", .. args], stateDir: state);
        try
        {
            var none = await K("check", "--json");
            Assert.Equal(1, none.ExitCode);
            Assert.False(Json(none).GetProperty("ok").GetBoolean());
            Assert.Contains("no kernel", Json(none).GetProperty("problem").GetString());

            var verify = await K("verify", "--path", deb, "--sha256", sha, "--json");
            Assert.True(verify.ExitCode == 0, verify.Stdout);
            var mismatch = await K("verify", "--path", deb, "--sha256", new string('0', 64));
            Assert.Equal(1, mismatch.ExitCode);
            Assert.Contains($"has sha256 {sha}", mismatch.Stderr);
            Assert.Equal(2, (await K("verify", "--path", deb)).ExitCode);

            var from = await K("install", "--from", deb, "--sha256", sha, "--json");
            Assert.True(from.ExitCode == 0, from.Stdout + from.Stderr);
            var check = await K("check");
            Assert.True(check.ExitCode == 0, check.Stderr);
            Assert.StartsWith("ok  ", check.Stdout);

            Assert.Equal(2, (await K("install", "--url", "http://127.0.0.1:9/k.deb")).ExitCode); // no --sha256: refused before any fetch
            using var server = new TcpListener(IPAddress.Loopback, 0);
            server.Start();
            int port = ((IPEndPoint)server.LocalEndpoint).Port;
            var serving = ServeOnceAsync(server, deb);
            var url = await K("install", "--url", $"http://127.0.0.1:{port}/{Path.GetFileName(deb)}", "--sha256", sha, "--json");
            Assert.True(url.ExitCode == 0, url.Stdout + url.Stderr);
            await serving;
            Assert.Equal(Json(from).GetProperty("sha256").GetString(), Json(url).GetProperty("sha256").GetString());
            Assert.Equal(0, (await K("check")).ExitCode);
        }
        finally
        {
            if (Directory.Exists(state)) Directory.Delete(state, true);
        }
    }

    /// <summary>Answers one HTTP GET on <paramref name="server"/> with the bytes of <paramref name="file"/>.</summary>
    private static async Task ServeOnceAsync(TcpListener server, string file)
    {
        using var client = await server.AcceptTcpClientAsync();
        var stream = client.GetStream();
        var buf = new byte[8192];
        var head = new StringBuilder();
        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buf);
            if (n == 0) return;
            head.Append(Encoding.ASCII.GetString(buf, 0, n));
        }
        long length = new FileInfo(file).Length;
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"));
        await using var fs = File.OpenRead(file);
        await fs.CopyToAsync(stream);
    }

    [Fact]
    public async Task Profiles_lists_the_library_table()
    {
        var r = await Ma("profiles", "--json");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(new[] { "tiny", "small", "medium", "large" }, Json(r).EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        var text = await Ma("profiles");
        Assert.Contains("tiny *", text.Stdout);
        Assert.Contains("4096 MiB", text.Stdout);
    }
}
