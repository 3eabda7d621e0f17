using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microagent.EndToEnd.Tests.Mcp;

/// <summary>
/// `serve mcp` as a trust boundary, driven by the official MCP TypeScript SDK client: host paths outside the roots (directly,
/// through `..` or a symlink) are refused both ways, nothing is replaced without overwrite, host targets need allowing,
/// withheld tools are neither listed nor callable, and the audit file records what touched the host.
/// </summary>
public sealed class McpTrustTests : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("ma-mcp-trust-").FullName;
    private readonly string _root, _outside;

    public McpTrustTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_base, "root")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_base, "outside")).FullName;
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private static JsonElement Ok(JsonElement call)
    {
        Assert.False(call.GetProperty("isError").GetBoolean(), call.ToString());
        return call.GetProperty("body").GetProperty("result");
    }

    private static JsonElement Error(JsonElement call, string kind)
    {
        Assert.True(call.GetProperty("isError").GetBoolean(), call.ToString());
        var error = call.GetProperty("body").GetProperty("error");
        Assert.Equal(kind, error.GetProperty("kind").GetString());
        return error;
    }

    private static List<JsonObject> AuditLines(DateTimeOffset since) =>
        [.. File.ReadAllLines(Path.Combine(MicroagentCli.StateDir, "mcp-audit.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(l => DateTimeOffset.Parse(l["time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) >= since)];

    [Fact]
    public async Task Host_paths_outside_the_roots_symlink_escapes_overwrites_and_host_targets_are_refused_and_audited()
    {
        File.WriteAllText(Path.Combine(_outside, "secret.txt"), "secret\n");
        File.WriteAllText(Path.Combine(_root, "in.txt"), "inside\n");
        File.WriteAllText(Path.Combine(_root, "existing.txt"), "old\n");
        File.CreateSymbolicLink(Path.Combine(_root, "link-out-file"), Path.Combine(_outside, "secret.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "link-out-dir"), _outside);
        var since = DateTimeOffset.UtcNow.AddSeconds(-1);
        var r = await McpServerTests.RunClientAsync("trust", ["--host-root", _root, "--allow-host-target", "127.0.0.1:9"],
            new Dictionary<string, string> { ["MCP_ROOT"] = _root, ["MCP_OUTSIDE"] = _outside });
        McpServerTests.AssertAllCallsValid(r);

        var limits = Ok(r.GetProperty("describe")).GetProperty("limits");
        Assert.Equal([_root], limits.GetProperty("host_roots").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(["127.0.0.1:9"], limits.GetProperty("allowed_host_targets").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(Path.Combine(MicroagentCli.StateDir, "mcp-audit.jsonl"), limits.GetProperty("audit_file").GetString());

        // Host targets: a vsock mapping or mediation target that is not allowed is refused; an allowed one works.
        var vsock = Error(r.GetProperty("vsockDenied"), "policy_denied");
        Assert.Contains("127.0.0.1:22", vsock.GetProperty("message").GetString());
        Assert.Contains("--allow-host-target", vsock.GetProperty("remediation").GetString());
        Assert.Equal("vsock", vsock.GetProperty("field").GetString());
        Error(r.GetProperty("mediationDenied"), "policy_denied");
        Assert.Equal("prepared", Ok(r.GetProperty("create")).GetProperty("state").GetString());
        Assert.Equal("running", Ok(r.GetProperty("start")).GetProperty("state").GetString());

        // Paths outside the root, by name, through `..`, or through a symlink inside the root: refused both ways.
        foreach (string call in new[] { "toOutside", "fromOutside", "toDotDot", "toLinkOut", "fromLinkOutFile", "fromLinkOutDir" })
        {
            var e = Error(r.GetProperty(call), "policy_denied");
            Assert.Contains(_root, e.GetProperty("message").GetString());
            Assert.Contains("--host-root", e.GetProperty("remediation").GetString());
        }
        Assert.Equal("secret\n", File.ReadAllText(Path.Combine(_outside, "secret.txt")));
        Assert.Equal(["secret.txt"], Directory.GetFileSystemEntries(_outside).Select(Path.GetFileName));
        Assert.Equal(Path.Combine(_outside, "secret.txt"), new FileInfo(Path.Combine(_root, "link-out-file")).LinkTarget);

        // An existing file is replaced only with overwrite: true; the result names the final path.
        Assert.Contains("overwrite: true", Error(r.GetProperty("fromExisting"), "conflict").GetProperty("remediation").GetString());
        Assert.Equal("old\n", r.GetProperty("existingAfterRefusal").GetString());
        Assert.Equal(Path.Combine(_root, "existing.txt"), Ok(r.GetProperty("fromOverwrite")).GetProperty("destination").GetString());
        Assert.Equal("from-guest\n", r.GetProperty("existingAfterOverwrite").GetString());
        Assert.Equal(Path.Combine(_root, "out.txt"), Ok(r.GetProperty("fromIntoDir")).GetProperty("destination").GetString());
        Assert.Equal("from-guest\n", File.ReadAllText(Path.Combine(_root, "out.txt")));
        Assert.Equal(Path.Combine(_root, "in.txt"), Ok(r.GetProperty("toInside")).GetProperty("source").GetString());
        Assert.Equal("inside\n", Ok(r.GetProperty("catIn")).GetProperty("stdout").GetString());
        Error(r.GetProperty("imageOutside"), "policy_denied");
        Assert.True(Ok(r.GetProperty("delete")).GetProperty("existed").GetBoolean());

        // The audit file: one line per host-touching or denied call, with the decision and the path or target, no contents.
        var audit = AuditLines(since);
        void Has(string tool, string decision, string? path = null, string? target = null) =>
            Assert.Contains(audit, l => l["tool"]!.GetValue<string>() == tool && l["decision"]!.GetValue<string>() == decision
                && (path is null || l["paths"]!.AsArray().Any(p => p!.GetValue<string>() == path))
                && (target is null || l["targets"]!.AsArray().Any(t => t!.GetValue<string>() == target)));
        Has("workspace_create", "denied", target: "127.0.0.1:22");
        Has("workspace_create", "denied", target: "127.0.0.1:23");
        Has("workspace_create", "allowed", target: "127.0.0.1:9");
        Has("workspace_cp", "denied", path: Path.Combine(_outside, "secret.txt"));
        Has("workspace_cp", "denied", path: Path.Combine(_outside, "stolen.txt"));
        Has("workspace_cp", "denied", path: Path.Combine(_root, "link-out-file"));
        Has("workspace_cp", "denied", path: Path.Combine(_root, "link-out-dir"));
        Has("workspace_cp", "allowed", path: Path.Combine(_root, "existing.txt"));
        Has("workspace_cp", "allowed", path: Path.Combine(_root, "out.txt"));
        Has("images_pull", "denied", path: _outside);
        Assert.Contains(audit, l => l["error"]?.GetValue<string>() == "conflict");
        Assert.DoesNotContain(audit, l => l.ToJsonString().Contains("from-guest") || l.ToJsonString().Contains("secret\\n"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(MicroagentCli.StateDir, "mcp-audit.jsonl")));
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task A_denied_tool_is_neither_listed_nor_callable_and_the_denial_is_audited()
    {
        var since = DateTimeOffset.UtcNow.AddSeconds(-1);
        var r = await McpServerTests.RunClientAsync("tools", ["--tools", "minimal", "--deny-tool", "workspace_exec"],
            new Dictionary<string, string> { ["MCP_TRY_TOOLS"] = """["workspace_exec","images_list","workspace_status"]""" });
        var tools = r.GetProperty("tools").EnumerateArray().Select(t => t.GetString()!).ToList();
        Assert.Equal(["microagent_ping", "microagent_describe", "workspace_run", "workspace_create", "workspace_start", "workspace_status",
            "workspace_delete", "workspace_cp"], tools);
        var exec = Error(r.GetProperty("workspace_exec"), "policy_denied");
        Assert.Contains("--deny-tool workspace_exec", exec.GetProperty("message").GetString());
        Assert.Contains("--allow-tool workspace_exec", exec.GetProperty("remediation").GetString());
        Assert.Contains("--tools minimal", Error(r.GetProperty("images_list"), "policy_denied").GetProperty("message").GetString());
        Error(r.GetProperty("workspace_status"), "not_found"); // offered: it runs (and finds no such workspace)
        var limits = Ok(r.GetProperty("describe")).GetProperty("limits");
        Assert.Equal("minimal", limits.GetProperty("tools").GetString());
        Assert.Equal(["workspace_exec"], limits.GetProperty("denied_tools").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(tools, Ok(r.GetProperty("describe")).GetProperty("operations").EnumerateArray().Select(o => o.GetProperty("name").GetString()!));
        var audit = AuditLines(since);
        Assert.Contains(audit, l => l["tool"]!.GetValue<string>() == "workspace_exec" && l["decision"]!.GetValue<string>() == "denied");
        Assert.Contains(audit, l => l["tool"]!.GetValue<string>() == "images_list" && l["decision"]!.GetValue<string>() == "denied");
    }

    [Fact]
    public async Task Read_only_mode_offers_only_read_only_tools_and_refuses_a_create()
    {
        var r = await McpServerTests.RunClientAsync("tools", ["--read-only"],
            new Dictionary<string, string> { ["MCP_TRY_TOOLS"] = """["workspace_create","workspace_list"]""" });
        var tools = r.GetProperty("tools").EnumerateArray().Select(t => t.GetString()!).ToList();
        Assert.Contains("workspace_status", tools);
        Assert.Contains("microagent_describe", tools);
        foreach (string changing in new[] { "workspace_create", "workspace_start", "workspace_exec", "workspace_cp", "workspace_run", "workspace_delete", "images_pull" })
            Assert.DoesNotContain(changing, tools);
        Assert.Contains("--read-only", Error(r.GetProperty("workspace_create"), "policy_denied").GetProperty("message").GetString());
        Assert.False(r.GetProperty("workspace_list").GetProperty("isError").GetBoolean());
        Assert.True(Ok(r.GetProperty("describe")).GetProperty("limits").GetProperty("read_only").GetBoolean());
        var list = await MicroagentCli.RunAsync(["list", "--json"]);
        Assert.DoesNotContain($"mcp-tools-", list.Stdout);
    }

    [Fact]
    public async Task Serve_mcp_help_shows_the_limits_and_their_defaults()
    {
        var help = await MicroagentCli.RunAsync(["serve", "mcp", "--help"]);
        Assert.Equal(0, help.ExitCode);
        string text = System.Text.RegularExpressions.Regex.Replace(help.Stdout, @"\s+", " "); // help wraps to the terminal width
        foreach (string s in new[] { "--host-root", "--allow-host-target", "--tools", "--allow-tool", "--deny-tool", "--read-only", "mcp-audit.jsonl",
                     "Default: the server's working directory only", "Default: none", "prompt injection" })
            Assert.Contains(s, text);
        var bad = await MicroagentCli.RunAsync(["serve", "mcp", "--allow-host-target", "nonsense", "--json"]);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("\"invalid\"", bad.Stdout);
    }
}
