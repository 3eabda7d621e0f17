using System.Text;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>Named-workspace and image tools: thin calls into <see cref="WorkspaceManager"/> and <see cref="ImageStore"/>.</summary>
public sealed partial class ToolCatalog
{
    private static readonly string[] Profiles = [.. WorkspaceProfile.All.Select(p => p.Name)];

    private WorkspaceManager Workspaces => new(_paths);

    private static JsonObject NameOnly(string description = "Workspace name.") =>
        Schema.Object(new JsonObject { ["name"] = Schema.String(description) }, "name");

    private static string Name(ToolCall call) => call.String("name", required: true)!;

    private static Microagent.Mediation.MediationConfig? Mediation(ToolCall call)
    {
        string? spec = call.String("mediation");
        if (spec is null)
            return call.Boolean("mediation_optional") ? throw MicroagentException.Invalid("'mediation_optional' needs 'mediation'") : null;
        return Microagent.Mediation.MediationConfig.Parse(spec, optional: call.Boolean("mediation_optional"));
    }

    private void AddLifecycleTools()
    {
        Add("workspace.create",
            "Create a named workspace (disk on the image baseline; nothing boots until workspace.start). Reports progress while an image is pulled.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name: letters, digits, '.', '_' or '-'."),
                ["image"] = Schema.String("Image reference (default: the embedded busybox image)."),
                ["setup"] = Schema.Strings("Shell commands run once, on first boot, before the workload."),
                ["exec"] = Schema.String("The workload: a shell command run after setup on every start; its result is workspace.result."),
                ["env"] = Schema.StringMap("Environment for setup, the workload and every exec."),
                ["hostname"] = Schema.String("Guest hostname (default: the name)."),
                ["profile"] = Schema.String("Size profile: tiny 256 MiB/1 vCPU/512 MiB disk, small 512/2/1024, medium 2048/2/8192, large 4096/4/16384.", Profiles),
                ["memory_mib"] = Schema.Integer("Guest memory in MiB (overrides the profile).", 128, 65536),
                ["cpus"] = Schema.Integer("Virtual CPUs (overrides the profile).", 1, 64),
                ["size_mib"] = Schema.Integer("Disk size in MiB (overrides the profile).", 64, 1 << 20),
                ["ttl_seconds"] = Schema.Integer("Idle lease: halt after this long without exec/cp/connections; 0 = permanent.", 0),
                ["vsock"] = Schema.Strings("Guest→host TCP mappings PORT=HOST:PORT (guest connects to CID 2 port PORT)."),
                ["mediation"] = Schema.String("Mediation channel PORT=HOST:PORT: the agent's guest connections to CID 2 port PORT are proxied to the control plane at HOST:PORT. Required and fail-closed unless mediation_optional."),
                ["mediation_optional"] = Schema.Boolean("Make the mediation channel optional and fail-open (development)."),
            }, "name"),
            async call =>
            {
                var spec = new WorkspaceSpec
                {
                    Name = Name(call),
                    Image = call.String("image"),
                    Setup = call.Strings("setup"),
                    Exec = call.String("exec"),
                    Env = Env(call),
                    Hostname = call.String("hostname"),
                    Profile = call.String("profile"),
                    MemoryMiB = (int?)call.Integer("memory_mib", 128, 65536),
                    Cpus = (int?)call.Integer("cpus", 1, 64),
                    SizeMiB = (int?)call.Integer("size_mib", 64, 1 << 20),
                    TtlSeconds = (int?)call.Integer("ttl_seconds", 0, int.MaxValue),
                    Vsock = call.Strings("vsock").Select(VsockMapping.Parse).ToList(),
                    Mediation = Mediation(call),
                };
                call.Progress.Report($"creating workspace {spec.Name}");
                return McpJson.Node(await Workspaces.CreateAsync(spec, call.Cancellation, call.Progress).ConfigureAwait(false));
            });

        Add("workspace.start",
            "Boot a workspace from its disk (prepared, halted, stopped or failed). Returns when the guest serves exec. Overrides apply to this boot only.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["profile"] = Schema.String("Size profile for this boot.", Profiles),
                ["memory_mib"] = Schema.Integer("Guest memory for this boot.", 128, 65536),
                ["cpus"] = Schema.Integer("Virtual CPUs for this boot.", 1, 64),
                ["ttl_seconds"] = Schema.Integer("Idle lease for this boot; 0 = permanent.", 0),
                ["mediation"] = Schema.String("Mediation channel PORT=HOST:PORT for this boot only."),
                ["mediation_optional"] = Schema.Boolean("Make this boot's mediation channel optional and fail-open."),
            }, "name"),
            async call =>
            {
                call.Progress.Report("booting");
                var status = await Workspaces.StartAsync(Name(call), new StartOptions
                {
                    Profile = call.String("profile"),
                    MemoryMiB = (int?)call.Integer("memory_mib", 128, 65536),
                    Cpus = (int?)call.Integer("cpus", 1, 64),
                    TtlSeconds = (int?)call.Integer("ttl_seconds", 0, int.MaxValue),
                    Mediation = Mediation(call),
                    Progress = call.Progress,
                }, call.Cancellation).ConfigureAwait(false);
                return McpJson.Node(status);
            });

        var execProps = ExecInputProperties();
        execProps["name"] = Schema.String("Workspace name (must be running).");
        Add("workspace.exec",
            "Run a command in a running workspace. A non-zero exit is a result (status, exit_code), not a tool error.",
            Schema.Object(execProps, "name"),
            async call =>
            {
                string? stdin = call.String("stdin");
                var r = await Workspaces.ExecAsync(Name(call), new ExecOptions
                {
                    Command = Argv(call, "workspace.exec"),
                    Env = Env(call),
                    Cwd = call.String("cwd"),
                    User = call.String("user"),
                    Timeout = call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
                    MaxOutputBytes = call.Integer("max_output_bytes", 0, 4 * 1024 * 1024),
                    Stdin = stdin is null ? null : new MemoryStream(Encoding.UTF8.GetBytes(stdin)),
                }, call.Cancellation).ConfigureAwait(false);
                return ExecResultJson(r.Status, r.ExitCode, r.Signal, r.Stdout, r.Stderr, r.StdoutTruncated, r.StderrTruncated, r.Error);
            });

        Add("workspace.wait", "Wait until the workspace reaches a terminal state (halted, stopped, failed).",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["timeout_ms"] = Schema.Integer("Give up after this long (a transient error).", 1),
            }, "name"),
            async call => McpJson.Node(await Workspaces.WaitAsync(Name(call),
                call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null, call.Cancellation).ConfigureAwait(false)));

        Add("workspace.status",
            "State, config, pids, readiness (guest_ready, exec_ready), disk usage, kernel and rootfs hashes, and the mediation channel " +
            "(mediation: {enabled, required, port, target, fail_closed}; mediation_ready: {ready, detail, error, severed, active_connections, ...}).",
            NameOnly(), async call => McpJson.Node(await Workspaces.GetStatusAsync(Name(call), call.Cancellation).ConfigureAwait(false)));

        Add("workspace.list", "Every workspace with its status.", Schema.Object([]),
            async call => new JsonObject { ["workspaces"] = McpJson.Node(await Workspaces.ListAsync(call.Cancellation).ConfigureAwait(false)) });

        Add("workspace.logs", "The last lines of the workspace's serial console log.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["tail_lines"] = Schema.Integer("How many lines from the end (default 100).", 1, 10000),
            }, "name"),
            async call =>
            {
                using var buffer = new MemoryStream();
                await Workspaces.ReadLogAsync(Name(call), buffer, follow: false, call.Cancellation).ConfigureAwait(false);
                string[] lines = Encoding.UTF8.GetString(buffer.ToArray()).Split('\n');
                if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1];
                int tail = (int)(call.Integer("tail_lines", 1, 10000) ?? 100);
                return new JsonObject
                {
                    ["total_lines"] = lines.Length,
                    ["lines"] = new JsonArray(lines.TakeLast(tail).Select(l => (JsonNode)l).ToArray()),
                };
            });

        Add("workspace.events", "State-change events (index, state, previous, detail, observed_at), oldest first; page with after_index.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["limit"] = Schema.Integer("Most events to return (default 100).", 1, 10000),
                ["after_index"] = Schema.Integer("Return events with an index greater than this (default: from the first).", -1),
            }, "name"),
            async call =>
            {
                int limit = (int)(call.Integer("limit", 1, 10000) ?? 100);
                long after = call.Integer("after_index", -1) ?? -1;
                var events = new JsonArray();
                long index = -1, last = after;
                await foreach (var e in Workspaces.ReadEventsAsync(Name(call), follow: false, call.Cancellation).ConfigureAwait(false))
                {
                    index++;
                    if (index <= after || events.Count >= limit) continue;
                    var node = McpJson.Node(e)!.AsObject();
                    node["index"] = index;
                    events.Add(node);
                    last = index;
                }
                return new JsonObject { ["events"] = events, ["next_index"] = last, ["total"] = index + 1 };
            });

        Add("workspace.result", "The structured result of the workload (--exec): status, exit code, output.",
            NameOnly(), async call => McpJson.Node(await Workspaces.GetResultAsync(Name(call), call.Cancellation).ConfigureAwait(false)));

        Add("workspace.halt", "Graceful power-off keeping the disk (then 'failed' if the guest does not stop within the window).",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["timeout_ms"] = Schema.Integer("Power-off window (default 20 s).", 1),
            }, "name"),
            async call => McpJson.Node(await Workspaces.HaltAsync(Name(call),
                call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null, call.Cancellation).ConfigureAwait(false)));

        Add("workspace.kill", "Force-stop the VM (no guest shutdown); the disk is kept.",
            NameOnly(), async call => McpJson.Node(await Workspaces.KillAsync(Name(call), call.Cancellation).ConfigureAwait(false)));

        Add("workspace.delete", "Delete a workspace and its disk. A running one is halted first (force: killed). Deleting an absent workspace succeeds.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["force"] = Schema.Boolean("Kill a running workspace instead of halting it."),
            }, "name"),
            async call => McpJson.Node(await Workspaces.DeleteAsync(Name(call),
                new DeleteOptions { StopRunning = true, Force = call.Boolean("force") }, call.Cancellation).ConfigureAwait(false)));

        Add("workspace.cp", "Copy a file or directory between the host and a running workspace (modes kept).",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name (must be running)."),
                ["direction"] = Schema.String("to_guest: host_path → guest_path; from_guest: guest_path → host_path.", "to_guest", "from_guest"),
                ["host_path"] = Schema.String("Path on the host (of the MCP server)."),
                ["guest_path"] = Schema.String("Absolute path in the guest."),
            }, "name", "direction", "host_path", "guest_path"),
            async call =>
            {
                string name = Name(call), host = call.String("host_path", required: true)!, guest = call.String("guest_path", required: true)!;
                var r = call.String("direction", required: true) switch
                {
                    "to_guest" => await Workspaces.CopyToAsync(name, host, guest, call.Cancellation).ConfigureAwait(false),
                    "from_guest" => await Workspaces.CopyFromAsync(name, guest, host, call.Cancellation).ConfigureAwait(false),
                    var d => throw MicroagentException.Invalid($"workspace.cp: direction '{d}' is not to_guest or from_guest"),
                };
                return McpJson.Node(r);
            });
    }

    private void AddImageTools()
    {
        Add("images.pull", "Pull an image (registry, oci:PATH[:TAG] or docker-archive:PATH) and build its ext4 baseline. Reports progress.",
            Schema.Object(new JsonObject
            {
                ["ref"] = Schema.String("Image reference, e.g. busybox, 127.0.0.1:5000/tools/python:3.11, oci:/path/layout:tag."),
                ["arch"] = Schema.String("Platform architecture to select from an index (default: the host's).", "amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64"),
                ["insecure"] = Schema.Boolean("Allow plain HTTP to this (non-loopback) registry."),
            }, "ref"),
            async call =>
            {
                string reference = call.String("ref", required: true)!;
                var options = new PullOptions
                {
                    Architecture = call.String("arch"),
                    InsecureRegistries = call.Boolean("insecure") ? [ImageReference.Parse(reference).Registry] : [],
                };
                var progress = new SyncProgress<ImageProgress>(p => call.Progress.Report($"{p.Phase}: {p.Message}"));
                var baseline = await new ImageStore(_paths).PullAsync(reference, options, progress, call.Cancellation).ConfigureAwait(false);
                return McpJson.Node(baseline);
            });

        Add("images.list", "Cached images: baselines with their references and the workspaces that use them.", Schema.Object([]),
            _ => Task.FromResult<JsonNode?>(new JsonObject { ["images"] = McpJson.Node(new ImageStore(_paths).List()) }));
    }
}
