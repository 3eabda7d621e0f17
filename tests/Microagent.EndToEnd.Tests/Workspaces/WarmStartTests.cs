using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// Its own state directory (so the templates there are only these tests'), with the template of the default image made by a
/// first cold <c>run</c> (docs/ARCHITECTURE.md "Warm start"); shared by <see cref="WarmStartTests"/>.
/// </summary>
public sealed class WarmStartState : IAsyncLifetime
{
    public string Dir { get; } = Path.Combine("/tmp", $"ma-e2e-warm-{Environment.ProcessId}");

    /// <summary>The <c>--json</c> of the first run: a cold boot that captured the template.</summary>
    public JsonElement FirstRun { get; private set; }

    public Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args, stateDir: Dir, timeoutSeconds: 300);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        FirstRun = JsonDocument.Parse(Check(await Ma("run", "--json", "--", "true")).Stdout).RootElement.Clone();
    }

    /// <summary>The current template of <c>run</c>'s default shape: made again (one cold boot) when a test removed or spoiled it.</summary>
    public async Task<JsonElement> TemplateAsync() =>
        JsonDocument.Parse(Check(await Ma("template", "create", "--json")).Stdout).RootElement.Clone();

    public static CliResult Check(CliResult r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        return r;
    }

    public async Task DisposeAsync()
    {
        await Ma("delete", "warm-ws", "--force");
        Assert.Empty(MicroagentCli.QemuProcessesUnder(Dir));
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

/// <summary>
/// Warm start through the real binary, QEMU (TCG) and guest: a warm <c>run</c> answers as a cold one does, with its own hostname,
/// machine-id and randomness; <c>--cold</c> boots cold; a template whose manifest no longer matches is never restored; a workspace's
/// first start is warm, later ones cold; pruning a template keeps the disk layer a workspace still reads.
/// </summary>
public sealed class WarmStartTests(WarmStartState fx) : IClassFixture<WarmStartState>
{
    private const string Script =
        "echo out; echo err >&2; echo \"FOO=$FOO\"; pwd; id -u; hostname; cat /etc/machine-id 2>/dev/null || echo none; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; exit 3";

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private async Task<JsonElement> RunAsync(params string[] flags)
    {
        var r = await fx.Ma(["run", "--json", .. flags, "-e", "FOO=bar", "--cwd", "/tmp", "--", "sh", "-c", Script]);
        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}: {r.Stderr}");
        return Json(r);
    }

    [Fact]
    public async Task A_warm_run_gives_the_results_of_a_cold_one_with_its_own_hostname_machine_id_and_random_bytes()
    {
        Assert.Null(Str(fx.FirstRun, "warmFrom"));
        Assert.Contains("no template", Str(fx.FirstRun, "coldReason"));
        string key = Str((await fx.TemplateAsync()).GetProperty("manifest"), "key")!;

        var warm1 = await RunAsync();
        var warm2 = await RunAsync();
        var cold = await RunAsync("--cold");
        Assert.Equal(key, Str(warm1, "warmFrom"));
        Assert.Equal(key, Str(warm2, "warmFrom"));
        Assert.Null(Str(cold, "warmFrom"));
        Assert.Equal("--cold was given", Str(cold, "coldReason"));

        string[] Lines(JsonElement r) => Str(r, "stdout")!.TrimEnd('\n').Split('\n');
        foreach (var r in new[] { warm1, warm2, cold })
        {
            Assert.Equal(3, r.GetProperty("exitCode").GetInt32());
            Assert.Equal("exited", Str(r, "status"));
            Assert.Equal("err\n", Str(r, "stderr"));
            var lines = Lines(r);
            Assert.Equal(["out", "FOO=bar", "/tmp", "0"], lines[..4]);
            Assert.Equal(Str(r, "workspace"), lines[4]); // the hostname is the run's own, warm or cold
            Assert.Matches("^[0-9a-f]{32}$", lines[6]);
        }
        // A warm start gets a new machine-id (a cold boot keeps the image's, none in the default image).
        Assert.Matches("^[0-9a-f]{32}$", Lines(warm1)[5]);
        Assert.NotEqual(Lines(warm1)[4], Lines(warm2)[4]);
        Assert.NotEqual(Lines(warm1)[5], Lines(warm2)[5]); // machine-id
        Assert.NotEqual(Lines(warm1)[6], Lines(warm2)[6]); // two restores of one template do not share a random stream

        // --cold neither used nor replaced the template.
        var list = Json(WarmStartState.Check(await fx.Ma("template", "list", "--json")));
        Assert.Equal(key, Str(Assert.Single(list.EnumerateArray()).GetProperty("manifest"), "key"));
    }

    [Fact]
    public async Task A_template_whose_manifest_kernel_hash_differs_is_not_restored_and_the_next_cold_boot_replaces_it()
    {
        var template = await fx.TemplateAsync();
        string key = Str(template.GetProperty("manifest"), "key")!;
        string manifest = Path.Combine(fx.Dir, "templates", key, "manifest.json");
        string text = File.ReadAllText(manifest);
        string kernel = Str(template.GetProperty("manifest"), "kernelSha256")!;
        File.WriteAllText(manifest, text.Replace(kernel, new string('0', 64)));

        var stale = Json(WarmStartState.Check(await fx.Ma("template", "list", "--json"))).EnumerateArray().Single();
        Assert.Contains("does not match its key", Str(stale, "stale"));
        var run = Json(WarmStartState.Check(await fx.Ma("run", "--json", "--", "true")));
        Assert.Null(Str(run, "warmFrom"));
        Assert.Contains($"template {key} is not used", Str(run, "coldReason"));

        // That cold boot captured the template again: the next run is warm.
        var current = Json(WarmStartState.Check(await fx.Ma("template", "list", "--json"))).EnumerateArray().Single();
        Assert.Null(Str(current, "stale"));
        Assert.Equal(kernel, Str(current.GetProperty("manifest"), "kernelSha256"));
        Assert.Equal(key, Str(Json(WarmStartState.Check(await fx.Ma("run", "--json", "--", "true"))), "warmFrom"));
    }

    [Fact]
    public async Task A_workspaces_first_start_is_warm_its_next_is_cold_and_pruning_the_template_keeps_its_disk()
    {
        string key = Str((await fx.TemplateAsync()).GetProperty("manifest"), "key")!;
        await fx.Ma("delete", "warm-ws", "--force");
        WarmStartState.Check(await fx.Ma("create", "warm-ws", "-e", "GREETING=hi", "--setup", "echo set-up > /root/setup"));
        var started = Json(WarmStartState.Check(await fx.Ma("start", "warm-ws", "--json")));
        Assert.Equal(key, Str(started.GetProperty("boot"), "warmFrom"));
        Assert.Equal("warm-ws\nhi\nset-up", WarmStartState.Check(await fx.Ma("exec", "warm-ws", "--", "sh", "-c", "hostname; echo $GREETING; cat /root/setup")).Stdout.Trim());
        var events = WarmStartState.Check(await fx.Ma("events", "warm-ws", "--json")).Stdout;
        Assert.Contains($"warm start from template {key}", events);
        Assert.Contains("warm-ws", Json(WarmStartState.Check(await fx.Ma("template", "list", "--json"))).EnumerateArray().Single().GetProperty("usedBy").ToString());

        // The template goes; the layer under the workspace's disk stays, so it keeps working and boots from its disk again.
        var pruned = Json(WarmStartState.Check(await fx.Ma("template", "prune", "--all", "--json")));
        Assert.Equal(key, pruned.GetProperty("removed").EnumerateArray().Single().GetString());
        Assert.Empty(Json(WarmStartState.Check(await fx.Ma("template", "list", "--json"))).EnumerateArray());
        WarmStartState.Check(await fx.Ma("exec", "warm-ws", "--", "sh", "-c", "echo after > /root/after; sync"));
        WarmStartState.Check(await fx.Ma("halt", "warm-ws"));
        var again = Json(WarmStartState.Check(await fx.Ma("start", "warm-ws", "--json")));
        Assert.Null(Str(again.GetProperty("boot"), "warmFrom"));
        Assert.Contains("not the workspace's first start", Str(again.GetProperty("boot"), "coldReason"));
        Assert.Equal("warm-ws\nset-up\nafter", WarmStartState.Check(await fx.Ma("exec", "warm-ws", "--", "sh", "-c", "hostname; cat /root/setup /root/after")).Stdout.Trim());
        WarmStartState.Check(await fx.Ma("delete", "warm-ws", "--force"));
    }
}
