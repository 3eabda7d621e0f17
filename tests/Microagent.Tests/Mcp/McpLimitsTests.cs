using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>Launch-time limits: parsing, which tools are offered, and what tool calls are refused before they touch the host.</summary>
public sealed class McpLimitsTests : IDisposable
{
    private readonly string _base = Path.Combine("/tmp", $"ma-ml-{Guid.NewGuid():N}"[..16]);
    private readonly StatePaths _paths;

    public McpLimitsTests()
    {
        Directory.CreateDirectory(Path.Combine(_base, "root"));
        _paths = new StatePaths(Path.Combine(_base, "state"));
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private McpLimits Limits(McpLimitOptions? o = null) =>
        McpLimits.Create((o ?? new McpLimitOptions()) with { WorkingDirectory = Path.Combine(_base, "root") });

    private static ToolCall Call(string tool, string json) =>
        new(tool, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json), new Progress<string>(), CancellationToken.None);

    private IReadOnlyList<string> Offered(McpLimitOptions o) => [.. ToolCatalog.Create(_paths, Limits(o)).Tools.Select(t => t.Name)];

    [Fact]
    public void Defaults_are_the_working_directory_no_targets_and_every_tool()
    {
        var limits = Limits();
        Assert.Equal([Path.Combine(_base, "root")], limits.Host.Roots);
        Assert.Empty(limits.Targets.Rules);
        var catalog = ToolCatalog.Create(_paths, limits);
        Assert.Equal(catalog.AllTools.Count, catalog.Tools.Count);
        var info = limits.Describe("/x/mcp-audit.jsonl");
        Assert.Equal(("full", false), (info.Tools, info.ReadOnly));
    }

    [Fact]
    public void Malformed_limits_are_invalid()
    {
        Assert.Equal(ErrorKind.Invalid, Assert.ThrowsAny<MicroagentException>(() => Limits(new() { Tools = "most" })).Kind);
        Assert.Equal(ErrorKind.Invalid, Assert.ThrowsAny<MicroagentException>(() => Limits(new() { HostTargets = ["127.0.0.1"] })).Kind);
        Assert.Equal(ErrorKind.Invalid, Assert.ThrowsAny<MicroagentException>(() => Limits(new() { HostRoots = ["/no/such/dir"] })).Kind);
        var e = Assert.ThrowsAny<MicroagentException>(() => ToolCatalog.Create(_paths, Limits(new() { DenyTools = ["workspace.exec"] })));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains("workspace_exec", e.Remediation);
    }

    [Fact]
    public void Tool_sets_allow_and_deny_lists_and_read_only_select_what_is_offered()
    {
        Assert.Equal(["microagent_ping", "microagent_describe", "workspace_run", "workspace_create", "workspace_start", "workspace_exec",
            "workspace_status", "workspace_delete", "workspace_cp"], Offered(new() { Tools = McpLimits.Minimal }));
        Assert.DoesNotContain("images_pull", Offered(new() { Tools = McpLimits.Standard }));
        Assert.Contains("images_pull", Offered(new() { Tools = McpLimits.Minimal, AllowTools = ["images_pull"] }));
        Assert.DoesNotContain("workspace_exec", Offered(new() { DenyTools = ["workspace_exec"], AllowTools = ["workspace_exec"] }));
        var catalog = ToolCatalog.Create(_paths, Limits(new() { ReadOnly = true }));
        Assert.NotEmpty(catalog.Tools);
        Assert.All(catalog.Tools, t => Assert.True(t.Hints.ReadOnly, t.Name));
        Assert.DoesNotContain("workspace_create", catalog.Tools.Select(t => t.Name));
        Assert.Contains("--read-only", catalog.Limits.Withheld(catalog.Find("workspace_create")!));
        Assert.Contains("microagent_describe", catalog.Tools.Select(t => t.Name));
    }

    [Fact]
    public async Task Host_paths_and_targets_are_refused_before_anything_is_touched()
    {
        var catalog = ToolCatalog.Create(_paths, Limits(new() { HostTargets = ["127.0.0.1:9"] }));
        async Task<MicroagentException> Refused(string tool, string json, ToolCall? call = null)
        {
            call ??= Call(tool, json);
            return await Assert.ThrowsAnyAsync<MicroagentException>(() => catalog.Find(tool)!.Handler(call));
        }
        var cp = Call("workspace_cp", """{"name":"nope","direction":"from_guest","host_path":"/etc/passwd","guest_path":"/x"}""");
        var e = await Refused("workspace_cp", "", cp);
        Assert.Equal(ErrorKind.PolicyDenied, e.Kind);
        Assert.Contains("--host-root", e.Remediation);
        Assert.Equal(["/etc/passwd"], cp.HostPaths);
        Assert.Equal(ErrorKind.PolicyDenied,
            (await Refused("workspace_cp", """{"name":"nope","direction":"to_guest","host_path":"/etc/passwd","guest_path":"/x"}""")).Kind);
        var create = Call("workspace_create", """{"name":"nope","vsock":["5000=127.0.0.1:22"]}""");
        e = await Refused("workspace_create", "", create);
        Assert.Equal((ErrorKind.PolicyDenied, "vsock"), (e.Kind, e.Field));
        Assert.Contains("--allow-host-target", e.Remediation);
        Assert.Equal(["127.0.0.1:22"], create.HostTargets);
        Assert.Equal(ErrorKind.PolicyDenied, (await Refused("workspace_create", """{"name":"nope","mediation":"2048=10.0.0.1:9"}""")).Kind);
        Assert.Equal(ErrorKind.PolicyDenied, (await Refused("workspace_start", """{"name":"nope","mediation":"2048=127.0.0.1:10"}""")).Kind);
        Assert.Equal(ErrorKind.PolicyDenied, (await Refused("images_pull", """{"ref":"oci:/etc"}""")).Kind);
        Assert.Equal(ErrorKind.PolicyDenied, (await Refused("workspace_run", """{"argv":["true"],"image":"docker-archive:/etc/passwd"}""")).Kind);
        // An allowed target passes the check (and the call then fails for the missing workspace, not for policy).
        Assert.Equal(ErrorKind.NotFound, (await Refused("workspace_start", """{"name":"nope","mediation":"2048=127.0.0.1:9"}""")).Kind);
        Assert.False(Directory.Exists(_paths.Workspaces) && Directory.EnumerateFileSystemEntries(_paths.Workspaces).Any());
    }

    [Fact]
    public void The_audit_file_gets_one_private_json_line_per_record()
    {
        var audit = new McpAudit(_paths);
        audit.Record("workspace_cp", denied: true, ["/etc/passwd"], [], "policy_denied");
        audit.Record("workspace_create", denied: false, [], ["127.0.0.1:9"], null);
        Assert.Equal(Path.Combine(_paths.Root, "mcp-audit.jsonl"), audit.FilePath);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(audit.FilePath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_paths.Root));
        var lines = File.ReadAllLines(audit.FilePath).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal(["time", "tool", "decision", "paths", "targets", "error"], lines[0].Select(p => p.Key));
        Assert.Equal(("workspace_cp", "denied", "/etc/passwd", "policy_denied"), (lines[0]["tool"]!.GetValue<string>(),
            lines[0]["decision"]!.GetValue<string>(), lines[0]["paths"]![0]!.GetValue<string>(), lines[0]["error"]!.GetValue<string>()));
        Assert.Equal(("allowed", "127.0.0.1:9"), (lines[1]["decision"]!.GetValue<string>(), lines[1]["targets"]![0]!.GetValue<string>()));
        Assert.True(DateTimeOffset.TryParse(lines[1]["time"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, out _));
    }
}
