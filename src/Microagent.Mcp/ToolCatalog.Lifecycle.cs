using System.Text;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>Named-workspace tools: thin calls into <see cref="WorkspaceManager"/>.</summary>
public sealed partial class ToolCatalog
{
    private static readonly string[] Profiles = [.. WorkspaceProfile.All.Select(p => p.Name)];

    private WorkspaceManager Workspaces => new(_paths);

    private static JsonObject NameOnly(string description = "Workspace name.") =>
        Schema.Object(new JsonObject { ["name"] = Schema.String(description) }, "name");

    private static string Name(ToolCall call) => call.String("name", required: true)!;

    private void AddLifecycleTools()
    {
        Add("workspace_create", "Create a workspace", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: true),
            "Create a named workspace (disk on the image baseline; nothing boots until workspace_start). Reports progress while an image is pulled. " +
            "Cancelling leaves no workspace behind.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name: letters, digits, '.', '_' or '-'."),
                ["image"] = Schema.String("Image reference (default: the embedded busybox image)."),
                ["setup"] = Schema.Strings("Shell commands run once, on first boot, before the workload."),
                ["exec"] = Schema.String("The workload: a shell command run after setup on every start; its result is workspace_result."),
                ["env"] = Schema.StringMap("Environment for setup, the workload and every exec."),
                ["hostname"] = Schema.String("Guest hostname (default: the name)."),
                ["profile"] = Schema.String("Size profile: tiny 256 MiB/1 vCPU/512 MiB disk, small 512/2/1024, medium 2048/2/8192, large 4096/4/16384.", Profiles),
                ["memory_mib"] = Schema.Integer("Guest memory in MiB (overrides the profile).", WorkspaceLimits.MemoryMiB),
                ["cpus"] = Schema.Integer("Virtual CPUs (overrides the profile).", WorkspaceLimits.Cpus),
                ["size_mib"] = Schema.Integer("Disk size in MiB (overrides the profile).", WorkspaceLimits.SizeMiB),
                ["ttl_seconds"] = Schema.Integer("Idle lease: halt after this long without exec/cp/connections; 0 = permanent.", WorkspaceLimits.TtlSeconds),
                ["vsock"] = Schema.Strings("Guest→host TCP mappings PORT=HOST:PORT (guest connects to CID 2 port PORT). Each HOST:PORT must be an allowed host target of this server (microagent_describe: limits.allowed_host_targets)."),
                ["mediation"] = Schema.String("Mediation channel PORT=HOST:PORT: the agent's guest connections to CID 2 port PORT are proxied to the control plane at HOST:PORT. Required and fail-closed unless mediation_optional. HOST:PORT must be an allowed host target of this server."),
                ["mediation_optional"] = Schema.Boolean("Make the mediation channel optional and fail-open (development)."),
                ["volumes"] = VolumesSchema(),
                ["from_snapshot"] = Schema.String("Fork SOURCE:TAG instead: the source's config, its own disk (an overlay on the snapshot) and identity; its first workspace_start resumes the snapshot."),
            }.With(p => AddNetworkProperties(p)).With(p => AddModelProperties(p)), "name"), McpJson.Context.WorkspaceStatus,
            async call =>
            {
                if (call.String("from_snapshot") is { } from)
                {
                    int colon = from.LastIndexOf(':');
                    if (colon <= 0 || colon == from.Length - 1)
                        throw Errors.MicroagentException.Invalid("from_snapshot is SOURCE:TAG", "e.g. research:before-tests");
                    return await Workspaces.ForkAsync(Name(call), from[..colon], from[(colon + 1)..], call.Cancellation).ConfigureAwait(false);
                }
                var spec = new WorkspaceSpec
                {
                    Name = Name(call),
                    Image = Image(call),
                    Setup = call.Strings("setup"),
                    Exec = call.String("exec"),
                    Env = Env(call),
                    Hostname = call.String("hostname"),
                    Profile = call.String("profile"),
                    MemoryMiB = (int?)call.Integer("memory_mib", WorkspaceLimits.MemoryMiB),
                    Cpus = (int?)call.Integer("cpus", WorkspaceLimits.Cpus),
                    SizeMiB = (int?)call.Integer("size_mib", WorkspaceLimits.SizeMiB),
                    TtlSeconds = (int?)call.Integer("ttl_seconds", WorkspaceLimits.TtlSeconds),
                    Vsock = Vsock(call),
                    Mediation = Mediation(call),
                    Disks = VolumeArgs(call),
                    Network = Network(call),
                    Model = await ModelArgsAsync(call).ConfigureAwait(false),
                };
                call.Progress.Report($"creating workspace {spec.Name}");
                return await Workspaces.CreateAsync(spec, call.Cancellation, call.Progress).ConfigureAwait(false);
            });

        Add("workspace_start", "Start a workspace", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false),
            "Boot a workspace from its disk (prepared, halted, stopped or failed). Returns when the guest serves exec; reports boot phases as progress. " +
            "Overrides apply to this boot only. Cancelling kills the VM it began and leaves the workspace stopped.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["profile"] = Schema.String("Size profile for this boot.", Profiles),
                ["memory_mib"] = Schema.Integer("Guest memory for this boot.", WorkspaceLimits.MemoryMiB),
                ["cpus"] = Schema.Integer("Virtual CPUs for this boot.", WorkspaceLimits.Cpus),
                ["ttl_seconds"] = Schema.Integer("Idle lease for this boot; 0 = permanent.", WorkspaceLimits.TtlSeconds),
                ["mediation"] = Schema.String("Mediation channel PORT=HOST:PORT for this boot only (HOST:PORT must be an allowed host target)."),
                ["mediation_optional"] = Schema.Boolean("Make this boot's mediation channel optional and fail-open."),
                ["from_snapshot"] = Schema.String("Restore this snapshot tag in place instead of booting from disk (the workspace must be stopped)."),
                ["cold"] = Schema.Boolean("Boot cold: on a first start, do not restore (or make) the warm-start template of its image and sizes."),
            }.With(p => AddNetworkProperties(p, policy: false)).With(AddPlatformProperties).With(p => AddModelProperties(p, withRef: false)), "name"), McpJson.Context.WorkspaceStatus,
            async call =>
            {
                call.Progress.Report("booting");
                var status = await Workspaces.StartAsync(Name(call), new StartOptions
                {
                    Profile = call.String("profile"),
                    MemoryMiB = (int?)call.Integer("memory_mib", WorkspaceLimits.MemoryMiB),
                    Cpus = (int?)call.Integer("cpus", WorkspaceLimits.Cpus),
                    TtlSeconds = (int?)call.Integer("ttl_seconds", WorkspaceLimits.TtlSeconds),
                    Mediation = Mediation(call),
                    Network = Network(call),
                    Model = await ModelArgsAsync(call).ConfigureAwait(false),
                    Progress = call.Progress,
                    FromSnapshot = call.String("from_snapshot"),
                    Arch = call.String("arch"),
                    Backend = call.String("backend"),
                    Cold = call.Boolean("cold"),
                }, call.Cancellation).ConfigureAwait(false);
                return status;
            });

        var execProps = ExecInputProperties();
        execProps["name"] = Schema.String("Workspace name (must be running).");
        Add("workspace_exec", "Run a command in a workspace", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false),
            "Run a command in a running workspace. A non-zero exit is a result (status, exit_code), not a tool error. With a progress token the " +
            "output is also reported as it comes (progress messages 'stdout: ...' / 'stderr: ...'). Cancelling kills the command's process group in the guest.",
            Schema.Object(execProps, "name"), McpJson.Context.ExecOutput,
            async call =>
            {
                string name = Name(call);
                long? maxOut = call.Integer("max_output_bytes", 0, MaxOutputBytes);
                var options = new ExecOptions
                {
                    Command = Argv(call, "workspace_exec"),
                    Env = Env(call),
                    Cwd = call.String("cwd"),
                    User = call.String("user"),
                    Timeout = call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
                    MaxOutputBytes = maxOut,
                    Stdin = Stdin(call),
                };
                if (!call.ProgressRequested || maxOut == 0)
                    return ExecOutput.From(await Workspaces.ExecAsync(name, options, call.Cancellation).ConfigureAwait(false));
                using var stdout = new OutputProgress("stdout", call.Progress);
                using var stderr = new OutputProgress("stderr", call.Progress);
                var r = await Workspaces.ExecStreamAsync(name, options with { MaxOutputBytes = maxOut ?? MaxOutputBytes }, stdout, stderr, call.Cancellation)
                    .ConfigureAwait(false);
                return ExecOutput.From(r, stdout.Bytes, stderr.Bytes);
            });

        Add("workspace_wait", "Wait for a workspace to stop", ToolHints.Query, "Wait until the workspace reaches a terminal state (halted, stopped, failed).",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["timeout_ms"] = Schema.Integer("Give up after this long (a transient error).", 1),
            }, "name"), McpJson.Context.WorkspaceStatus,
            async call => await Workspaces.WaitAsync(Name(call),
                call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null, call.Cancellation).ConfigureAwait(false));

        Add("workspace_status", "Workspace status", ToolHints.Query,
            "State, config, pids, readiness (guest_ready, exec_ready), disk usage, kernel and rootfs hashes, and the mediation channel " +
            "(mediation: {enabled, required, port, target, fail_closed}; mediation_ready: {ready, detail, error, severed, active_connections, ...}).",
            NameOnly(), McpJson.Context.WorkspaceStatus, call => Workspaces.GetStatusAsync(Name(call), call.Cancellation));

        Add("workspace_list", "List workspaces", ToolHints.Query, "Every workspace with its status.", Schema.Object([]), McpJson.Context.WorkspaceList,
            async call => new WorkspaceList(await Workspaces.ListAsync(call.Cancellation).ConfigureAwait(false)));

        Add("workspace_logs", "Workspace serial log", ToolHints.Query,
            "The last lines of the workspace's serial console log (the whole log is the resource microagent://workspaces/{name}/logs).",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["tail_lines"] = Schema.Integer("How many lines from the end (default 100).", 1, 10000),
            }, "name"), McpJson.Context.LogTail,
            async call =>
            {
                using var buffer = new MemoryStream();
                await Workspaces.ReadLogAsync(Name(call), buffer, follow: false, call.Cancellation).ConfigureAwait(false);
                string[] lines = Encoding.UTF8.GetString(buffer.ToArray()).Split('\n');
                if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1];
                int tail = (int)(call.Integer("tail_lines", 1, 10000) ?? 100);
                return new LogTail(lines.Length, [.. lines.TakeLast(tail)]);
            });

        Add("workspace_events", "Workspace events", ToolHints.Query,
            "State-change events (index, state, previous, detail, observed_at), oldest first; page with after_index (the whole history is the resource microagent://workspaces/{name}/events).",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["limit"] = Schema.Integer("Most events to return (default 100).", 1, 10000),
                ["after_index"] = Schema.Integer("Return events with an index greater than this (default: from the first).", -1),
            }, "name"), McpJson.Context.EventPage,
            async call =>
            {
                int limit = (int)(call.Integer("limit", 1, 10000) ?? 100);
                long after = call.Integer("after_index", -1) ?? -1;
                var events = new List<IndexedEvent>();
                long index = -1, last = after;
                await foreach (var e in Workspaces.ReadEventsAsync(Name(call), follow: false, call.Cancellation).ConfigureAwait(false))
                {
                    index++;
                    if (index <= after || events.Count >= limit) continue;
                    events.Add(IndexedEvent.From(index, e));
                    last = index;
                }
                return new EventPage(events, last, index + 1);
            });

        Add("workspace_result", "Workload result", ToolHints.Query, "The structured result of the workload (exec): status, exit code, output.",
            NameOnly(), McpJson.Context.WorkloadResult, call => Workspaces.GetResultAsync(Name(call), call.Cancellation));

        Add("workspace_halt", "Halt a workspace", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Graceful power-off keeping the disk (then 'failed' if the guest does not stop within the window); its running processes end. Not running: no-op.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["timeout_ms"] = Schema.Integer("Power-off window (default 20 s).", 1),
                ["reason"] = Schema.String("Why (one line), recorded in the workspace's event history."),
            }, "name"), McpJson.Context.WorkspaceStatus,
            call => Workspaces.HaltAsync(Name(call), call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null, call.String("reason"), call.Cancellation));

        Add("workspace_kill", "Kill a workspace", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Force-stop the VM (no guest shutdown); the disk is kept. Not running: no-op.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["reason"] = Schema.String("Why (one line), recorded in the workspace's event history."),
            }, "name"), McpJson.Context.WorkspaceStatus, call => Workspaces.KillAsync(Name(call), call.String("reason"), call.Cancellation));

        Add("workspace_pause", "Pause a workspace", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: false),
            "Freeze a running workspace's vCPUs in place (memory and processes kept); exec and cp are refused until workspace_resume, and the idle " +
            "lease does not run down. Already paused: no-op.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name (must be running)."),
                ["reason"] = Schema.String("Why, shown in status and events (at most 200 characters)."),
            }, "name"), McpJson.Context.WorkspaceStatus,
            call => Workspaces.PauseAsync(Name(call), call.String("reason"), call.Cancellation));

        Add("workspace_resume", "Resume a workspace", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: false),
            "Thaw a paused workspace where it stopped and set its wall clock from the host. One the host paused (disk full) resumes once the disk " +
            "has room. Running: no-op.",
            NameOnly(), McpJson.Context.WorkspaceStatus, call => Workspaces.ResumeAsync(Name(call), call.Cancellation));

        Add("workspace_delete", "Delete a workspace", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Delete a workspace and its disk. A running one is halted first (force: killed). Deleting an absent workspace succeeds.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["force"] = Schema.Boolean("Kill a running workspace instead of halting it."),
            }, "name"), McpJson.Context.DeleteResult,
            call => Workspaces.DeleteAsync(Name(call), new DeleteOptions { StopRunning = true, Force = call.Boolean("force") }, call.Cancellation));

        Add("workspace_cp", "Copy files to or from a workspace", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false),
            "Copy a file or directory between the host and a running workspace (modes kept). host_path must resolve, after symlinks, inside one of " +
            "this server's host roots (microagent_describe: limits.host_roots). from_guest never writes through a symlink and refuses an existing " +
            "destination unless overwrite is true; the result's destination is the final host path.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name (must be running)."),
                ["direction"] = Schema.String("to_guest: host_path → guest_path; from_guest: guest_path → host_path.", "to_guest", "from_guest"),
                ["host_path"] = Schema.String("Path on the host (of the MCP server), inside a host root; relative paths are against the server's working directory."),
                ["guest_path"] = Schema.String("Absolute path in the guest."),
                ["overwrite"] = Schema.Boolean("from_guest: replace an existing host file or directory (default false: an existing one is a conflict)."),
            }, "name", "direction", "host_path", "guest_path"), McpJson.Context.CopyResult,
            async call =>
            {
                string name = Name(call), host = call.String("host_path", required: true)!, guest = call.String("guest_path", required: true)!;
                string direction = call.String("direction", required: true)!;
                bool overwrite = call.Boolean("overwrite");
                call.HostPaths.Add(host);
                var r = direction switch
                {
                    "to_guest" => await Workspaces.CopyToAsync(name, host, guest, Limits.Host, call.Cancellation).ConfigureAwait(false),
                    "from_guest" => await Workspaces.CopyFromAsync(name, guest, host, Limits.Host, overwrite, call.Cancellation).ConfigureAwait(false),
                    var d => throw new MicroagentException(ErrorKind.Invalid, $"workspace_cp: direction '{d}' is not to_guest or from_guest") { Field = "direction" },
                };
                string final = direction == "to_guest" ? r.Source : r.Destination;
                if (final != host) call.HostPaths.Add(final);
                return r;
            });
    }
}
