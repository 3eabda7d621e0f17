using System.Globalization;
using System.Text.Json.Serialization;
using Microagent.Mediation;
using Microagent.Networking;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>Resource profile: memory, vCPUs and disk size of a workspace.</summary>
/// <param name="Name">tiny, small, medium or large.</param>
/// <param name="MemoryMiB">Guest memory.</param>
/// <param name="Cpus">Virtual CPUs.</param>
/// <param name="DiskMiB">Virtual disk size (at least the image's baseline).</param>
public sealed record WorkspaceProfile(string Name, int MemoryMiB, int Cpus, int DiskMiB)
{
    /// <summary>256 MiB, 1 vCPU, 512 MiB disk (the default).</summary>
    public static readonly WorkspaceProfile Tiny = new("tiny", 256, 1, 512);
    /// <summary>512 MiB, 2 vCPUs, 1 GiB disk.</summary>
    public static readonly WorkspaceProfile Small = new("small", 512, 2, 1024);
    /// <summary>2 GiB, 2 vCPUs, 8 GiB disk.</summary>
    public static readonly WorkspaceProfile Medium = new("medium", 2048, 2, 8192);
    /// <summary>4 GiB, 4 vCPUs, 16 GiB disk.</summary>
    public static readonly WorkspaceProfile Large = new("large", 4096, 4, 16384);

    /// <summary>All profiles, smallest first.</summary>
    public static IReadOnlyList<WorkspaceProfile> All { get; } = [Tiny, Small, Medium, Large];

    /// <summary>The profile named <paramref name="name"/>; throws <see cref="WorkspaceSpecException"/> when unknown.</summary>
    public static WorkspaceProfile Parse(string name) =>
        All.FirstOrDefault(p => p.Name == name.Trim().ToLowerInvariant())
        ?? throw new WorkspaceSpecException($"unknown profile '{name}'", "use tiny, small, medium or large") { Field = "profile" };
}

/// <summary>A guest→host vsock mapping: guest connections to CID 2 port <paramref name="GuestPort"/> are relayed to TCP <paramref name="Host"/>:<paramref name="HostPort"/>.</summary>
/// <param name="GuestPort">vsock port the guest connects to (on CID 2).</param>
/// <param name="Host">TCP host the supervisor connects to (127.0.0.1 unless given).</param>
/// <param name="HostPort">TCP port.</param>
public sealed record VsockMapping(uint GuestPort, string Host, int HostPort)
{
    /// <summary>Parses <c>PORT=HOST:PORT</c> or <c>PORT=PORT</c> (host 127.0.0.1).</summary>
    public static VsockMapping Parse(string text)
    {
        string s = text.Trim();
        int eq = s.IndexOf('=');
        if (eq <= 0) throw Bad(text);
        if (!uint.TryParse(s.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out uint guestPort) || guestPort == 0)
            throw Bad(text);
        if (guestPort is ProtocolInfo.ReadyPort or NetworkInfo.EgressPort or NetworkInfo.DnsPort or ModelInfo.HostPort)
            throw new WorkspaceSpecException($"vsock port {guestPort} is reserved ({ProtocolInfo.ReadyPort}: the guest agent; {NetworkInfo.EgressPort}, {NetworkInfo.DnsPort}: the network; {ModelInfo.HostPort}: the model forward)", "use another guest port") { Field = "vsock" };
        string target = s[(eq + 1)..];
        int colon = target.LastIndexOf(':');
        string host = colon < 0 ? "127.0.0.1" : target[..colon].Trim('[', ']');
        string portText = colon < 0 ? target : target[(colon + 1)..];
        if (host.Length == 0 || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int hostPort) || hostPort is < 1 or > 65535)
            throw Bad(text);
        return new VsockMapping(guestPort, host, hostPort);
    }

    /// <summary>The <c>PORT=HOST:PORT</c> form.</summary>
    public override string ToString() => $"{GuestPort}={Host}:{HostPort}";

    private static WorkspaceSpecException Bad(string text) =>
        new($"vsock mapping '{text}' is not PORT=HOST:PORT", "example: 5000=127.0.0.1:8080 (the guest connects to CID 2 port 5000)") { Field = "vsock" };
}

/// <summary>Everything a workspace is created from (the <c>microagent.yaml</c> spec, CLI flags override it). Null = default.</summary>
public sealed record WorkspaceSpec
{
    /// <summary>Workspace name: letters, digits, '.', '_' and '-'; at most 48 characters.</summary>
    public string? Name { get; init; }
    /// <summary>Image reference; null = the embedded default image.</summary>
    public string? Image { get; init; }
    /// <summary>Shell commands run once, on first boot, before <see cref="Exec"/> (each through <c>/bin/sh -c</c>).</summary>
    public IReadOnlyList<string> Setup { get; init; } = [];
    /// <summary>The workload: a shell command run after setup on every start; its result is kept (<c>microagent result</c>); the workspace stops when it ends.</summary>
    public string? Exec { get; init; }
    /// <summary>Environment (KEY=VALUE) for setup, the workload and every exec.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    /// <summary>Guest hostname; default the workspace name.</summary>
    public string? Hostname { get; init; }
    /// <summary>tiny (default), small, medium or large.</summary>
    public string? Profile { get; init; }
    /// <summary>Guest memory in MiB (overrides the profile).</summary>
    public int? MemoryMiB { get; init; }
    /// <summary>vCPUs (overrides the profile).</summary>
    public int? Cpus { get; init; }
    /// <summary>Virtual disk size in MiB (overrides the profile; never below the image baseline).</summary>
    public int? SizeMiB { get; init; }
    /// <summary>Idle lease in seconds: reaped after this long without exec/cp/connect activity; 0 = permanent (default).</summary>
    public int? TtlSeconds { get; init; }
    /// <summary>Guest→host TCP mappings.</summary>
    public IReadOnlyList<VsockMapping> Vsock { get; init; } = [];
    /// <summary>The mediation channel (spec <c>mediation:</c>, CLI <c>--mediation</c>); null = none.</summary>
    public MediationConfig? Mediation { get; init; }
    /// <summary>The console shell <c>connect</c> opens: an absolute guest path; null = <c>/bin/sh</c>.</summary>
    public string? Shell { get; init; }
    /// <summary>Data disks: ext4 images, tar bundles and named volumes mounted in the guest (docs/ARCHITECTURE.md "Images and disks").</summary>
    public IReadOnlyList<Volumes.DiskRequest> Disks { get; init; } = [];
    /// <summary>The network (spec <c>network:</c>, CLI <c>--network</c>, <c>--egress-*</c>, <c>--add-host</c>, <c>--publish</c>); null = user mode, default policy.</summary>
    public NetworkSpec? Network { get; init; }
    /// <summary>The model pairing (CLI <c>--model</c>, <c>--model-runner*</c>, <c>--model-mediation*</c>); null = none.</summary>
    public Models.ModelSpec? Model { get; init; }

    /// <summary>Fields of <paramref name="overrides"/> that are set replace this spec's.</summary>
    public WorkspaceSpec With(WorkspaceSpec overrides) => new()
    {
        Name = overrides.Name ?? Name,
        Image = overrides.Image ?? Image,
        Setup = overrides.Setup.Count > 0 ? overrides.Setup : Setup,
        Exec = overrides.Exec ?? Exec,
        Env = overrides.Env.Count > 0 ? [.. Env, .. overrides.Env] : Env,
        Hostname = overrides.Hostname ?? Hostname,
        Profile = overrides.Profile ?? Profile,
        MemoryMiB = overrides.MemoryMiB ?? MemoryMiB,
        Cpus = overrides.Cpus ?? Cpus,
        SizeMiB = overrides.SizeMiB ?? SizeMiB,
        TtlSeconds = overrides.TtlSeconds ?? TtlSeconds,
        Vsock = overrides.Vsock.Count > 0 ? overrides.Vsock : Vsock,
        Mediation = overrides.Mediation ?? Mediation,
        Shell = overrides.Shell ?? Shell,
        Disks = overrides.Disks.Count > 0 ? overrides.Disks : Disks,
        Network = Network is null ? overrides.Network : Network.With(overrides.Network),
        Model = overrides.Model ?? Model,
    };
}

/// <summary>Per-boot overrides for <see cref="WorkspaceManager.StartAsync"/>; null keeps the stored config.</summary>
public sealed record StartOptions
{
    /// <summary>Profile for this boot only.</summary>
    public string? Profile { get; init; }
    /// <summary>Memory for this boot only.</summary>
    public int? MemoryMiB { get; init; }
    /// <summary>vCPUs for this boot only.</summary>
    public int? Cpus { get; init; }
    /// <summary>Idle lease for this boot only.</summary>
    public int? TtlSeconds { get; init; }
    /// <summary>vsock mappings for this boot only (replace the stored ones when non-empty).</summary>
    public IReadOnlyList<VsockMapping> Vsock { get; init; } = [];
    /// <summary>Mediation channel for this boot only (replaces the stored one).</summary>
    public MediationConfig? Mediation { get; init; }
    /// <summary>Network overrides for this boot only (mode, published ports, policy additions) over the stored network.</summary>
    public NetworkSpec? Network { get; init; }
    /// <summary>Model pairing overrides for this boot only (set fields replace the stored pairing's); its runner environment applies to this boot.</summary>
    public Models.ModelSpec? Model { get; init; }
    /// <summary>When set, the supervisor kills the VM (and deletes an ephemeral workspace) once this process is gone.</summary>
    public int? OwnerPid { get; init; }
    /// <summary>Delete the workspace directory when the supervisor ends because its owner died.</summary>
    public bool Ephemeral { get; init; }
    /// <summary>
    /// Boot this kernel image file instead of the default kernel, this boot only. Hash-verified like installed kernels: it must
    /// be a copy of an installed kernel (its sha256 is the recorded one; that kernel's modules go into the initramfs), else
    /// <c>invalid</c> (docs/ARCHITECTURE.md "Kernels and boot").
    /// </summary>
    public string? Kernel { get; init; }
    /// <summary>The guest architecture: <c>x86_64</c> (or <c>amd64</c>), the only one; anything else is <c>unsupported</c>. Null = x86_64.</summary>
    public string? Arch { get; init; }
    /// <summary><c>qemu-kvm</c> or <c>qemu-tcg</c> for this boot; KVM where the probe found it unusable is <c>unsupported</c>. Null = the probe's choice.</summary>
    public string? Backend { get; init; }
    /// <summary>The supervisor executable for this boot (overrides <see cref="WorkspaceManagerOptions.SupervisorExecutable"/>); must exist and be executable.</summary>
    public string? SupervisorExecutable { get; init; }
    /// <summary>Phase messages for a progress display.</summary>
    [JsonIgnore] public IProgress<string>? Progress { get; init; }
    /// <summary>Restore this snapshot tag in place instead of booting from disk (docs/ARCHITECTURE.md "Snapshots").</summary>
    public string? FromSnapshot { get; init; }
    /// <summary>Boot cold: do not restore (or capture) a warm-start template, even on the first start (docs/ARCHITECTURE.md "Warm start").</summary>
    public bool Cold { get; init; }
}

/// <summary>One command to run in a running workspace.</summary>
public sealed record ExecOptions
{
    /// <summary>Program and arguments (no implied shell).</summary>
    public required IReadOnlyList<string> Command { get; init; }
    /// <summary>Extra environment entries (KEY=VALUE) over the image's and the workspace's.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    /// <summary>Working directory; null = the image's WorkingDir or /.</summary>
    public string? Cwd { get; init; }
    /// <summary>User (name, uid or uid:gid); null = the image's User or root.</summary>
    public string? User { get; init; }
    /// <summary>Kill the command after this long (status timed_out, exit 124).</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>Per-stream output cap in bytes; null = unlimited when streaming, 4 MiB when captured.</summary>
    public long? MaxOutputBytes { get; init; }
    /// <summary>Streamed to the command's stdin until it ends; null = empty stdin.</summary>
    public Stream? Stdin { get; init; }
}

/// <summary>The outcome of an exec.</summary>
/// <param name="Status">exited, signaled, timed_out or failed_to_start.</param>
/// <param name="ExitCode">Code for a CLI to exit with: the guest's code, 128+signal, 124 on timeout, 126/127 when not started.</param>
/// <param name="Signal">Signal number when signaled.</param>
/// <param name="Stdout">Captured stdout (null when streamed).</param>
/// <param name="Stderr">Captured stderr (null when streamed).</param>
/// <param name="StdoutTruncated">stdout hit the cap.</param>
/// <param name="StderrTruncated">stderr hit the cap.</param>
/// <param name="DurationMs">Guest-side wall time of the command.</param>
/// <param name="Error">Why the command did not start.</param>
public sealed record WorkspaceExecResult(string Status, int ExitCode, int? Signal, byte[]? Stdout, byte[]? Stderr,
    bool StdoutTruncated, bool StderrTruncated, long DurationMs, string? Error)
{
    /// <summary>The guest kernel's OOM killer chose this command (docs/ARCHITECTURE.md "Faults"); the workspace keeps running.</summary>
    public bool OomKilled { get; init; }

    /// <summary>A note on how the command ended (the OOM killer's choice); null when there is nothing to add.</summary>
    public string? Note { get; init; }

    /// <summary>Maps a protocol result.</summary>
    internal static WorkspaceExecResult From(ExecResult r) =>
        new(r.Status, Runner.ExitCodeOf(r), r.Signal, r.Stdout, r.Stderr, r.StdoutTruncated, r.StderrTruncated, r.DurationMs, r.Error)
        {
            OomKilled = r.OomKilled, Note = r.Note,
        };
}

/// <summary>What a copy moved.</summary>
/// <param name="Source">Source path (host path or NAME:PATH).</param>
/// <param name="Destination">Where it landed.</param>
/// <param name="Entries">Files, directories and links copied.</param>
/// <param name="Bytes">Regular-file bytes copied.</param>
public sealed record CopyResult(string Source, string Destination, int Entries, long Bytes);

/// <summary>The structured result of a workspace's workload (<see cref="WorkspaceSpec.Exec"/>), kept in <c>result.json</c>.</summary>
public sealed record WorkloadResult
{
    /// <summary>The shell command.</summary>
    public required string Command { get; init; }
    /// <summary>exited, signaled, timed_out, failed_to_start, or lost (the VM stopped under it).</summary>
    public required string Status { get; init; }
    /// <summary>Exit code (128+signal when signaled).</summary>
    public int ExitCode { get; init; }
    /// <summary>Signal when signaled.</summary>
    public int? Signal { get; init; }
    /// <summary>Captured stdout (UTF-8, capped).</summary>
    public string Stdout { get; init; } = "";
    /// <summary>Captured stderr (UTF-8, capped).</summary>
    public string Stderr { get; init; } = "";
    /// <summary>Either stream hit the cap.</summary>
    public bool Truncated { get; init; }
    /// <summary>Why it did not start or was lost.</summary>
    public string? Error { get; init; }
    /// <summary>When it started.</summary>
    public DateTimeOffset StartedAt { get; init; }
    /// <summary>When it ended.</summary>
    public DateTimeOffset FinishedAt { get; init; }
}

/// <summary>One lifecycle event, one line of <c>events.jsonl</c>.</summary>
/// <param name="Workspace">Workspace name.</param>
/// <param name="State">The new state.</param>
/// <param name="Previous">The state before (null for creation).</param>
/// <param name="Detail">Why.</param>
/// <param name="ObservedAt">When.</param>
public sealed record WorkspaceEvent(string Workspace, WorkspaceState State, WorkspaceState? Previous, string? Detail, DateTimeOffset ObservedAt);
