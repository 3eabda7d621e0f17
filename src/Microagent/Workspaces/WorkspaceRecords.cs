using System.Text.Json.Serialization;
using Microagent.Mediation;
using Microagent.Networking;

namespace Microagent.Workspaces;

/// <summary>A workspace's stored configuration (<c>config.json</c>): the resolved spec plus what the image contributed.</summary>
public sealed record WorkspaceConfig
{
    /// <summary>Workspace name.</summary>
    public required string Name { get; init; }
    /// <summary>Image reference as given (null = default image).</summary>
    public string? Image { get; init; }
    /// <summary>Manifest digest of the image the disk was made from.</summary>
    public required string ImageDigest { get; init; }
    /// <summary>Sealed ext4 baseline the qcow2 overlay is backed by.</summary>
    public required string BaselinePath { get; init; }
    /// <summary>Setup commands (first boot only).</summary>
    public IReadOnlyList<string> Setup { get; init; } = [];
    /// <summary>Workload shell command.</summary>
    public string? Exec { get; init; }
    /// <summary>Workspace environment (KEY=VALUE).</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    /// <summary>Guest hostname.</summary>
    public required string Hostname { get; init; }
    /// <summary>Profile name the sizes came from.</summary>
    public required string Profile { get; init; }
    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; }
    /// <summary>vCPUs.</summary>
    public int Cpus { get; init; }
    /// <summary>Virtual disk size in MiB.</summary>
    public int SizeMiB { get; init; }
    /// <summary>Idle lease in seconds; 0 = permanent.</summary>
    public int TtlSeconds { get; init; }
    /// <summary>Guest→host TCP mappings.</summary>
    public IReadOnlyList<VsockMapping> Vsock { get; init; } = [];
    /// <summary>The mediation channel; null = none.</summary>
    public MediationConfig? Mediation { get; init; }
    /// <summary>The network (mode, egress policy, published ports); null = <see cref="NetworkConfig.Default"/> (workspaces made before networking).</summary>
    public NetworkConfig? Network { get; init; }
    /// <summary>The console shell <c>connect</c> opens (absolute guest path).</summary>
    public string Shell { get; init; } = WorkspaceLimits.DefaultShell;
    /// <summary>The model pairing (<c>--model</c>; docs/ARCHITECTURE.md "Model runner"); null = none. The runner environment's values are not stored.</summary>
    public Models.ModelPairing? Model { get; init; }
    /// <summary>Data disks, attached in this order on every start (docs/ARCHITECTURE.md "Images and disks").</summary>
    public IReadOnlyList<Volumes.AttachedDisk> Disks { get; init; } = [];
    /// <summary>The image's environment (applied under <see cref="Env"/>).</summary>
    public IReadOnlyList<string> ImageEnv { get; init; } = [];
    /// <summary>The image's WorkingDir.</summary>
    public string? ImageWorkingDir { get; init; }
    /// <summary>The image's User.</summary>
    public string? ImageUser { get; init; }
    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>What one boot used (written by the supervisor).</summary>
public sealed record BootRecord
{
    /// <summary>Guest memory in MiB for this boot.</summary>
    public int MemoryMiB { get; init; }
    /// <summary>vCPUs for this boot.</summary>
    public int Cpus { get; init; }
    /// <summary>Idle lease for this boot (0 = permanent).</summary>
    public int TtlSeconds { get; init; }
    /// <summary>Mappings for this boot.</summary>
    public IReadOnlyList<VsockMapping> Vsock { get; init; } = [];
    /// <summary>Mediation channel for this boot; null = none.</summary>
    public MediationConfig? Mediation { get; init; }
    /// <summary>The network of this boot (the stored one, or a start's override); null = <see cref="NetworkConfig.Default"/>.</summary>
    public NetworkConfig? Network { get; init; }
    /// <summary>The model runner this boot's forward reaches (paired before the supervisor starts); null = no model.</summary>
    public Models.ModelAttachment? Model { get; init; }
    /// <summary>Owner process whose death kills the VM (one-shot runs).</summary>
    public int? OwnerPid { get; init; }
    /// <summary>Delete the workspace when the owner dies.</summary>
    public bool Ephemeral { get; init; }
    /// <summary>A kernel image file booted instead of the default kernel, this boot only (<see cref="StartOptions.Kernel"/>); null = the default.</summary>
    public string? KernelOverride { get; init; }
    /// <summary>The backend asked for this boot (<c>qemu-kvm</c> or <c>qemu-tcg</c>, <see cref="StartOptions.Backend"/>); null = the probe's choice.</summary>
    public string? Backend { get; init; }
    /// <summary>tcg or kvm.</summary>
    public string? Accelerator { get; init; }
    /// <summary>Guest kernel release.</summary>
    public string? KernelRelease { get; init; }
    /// <summary>sha256 of the kernel image booted (verified before the boot).</summary>
    public string? KernelSha256 { get; init; }
    /// <summary>Guest agent version.</summary>
    public string? AgentVersion { get; init; }
    /// <summary>Milliseconds from supervisor start to the agent's hello.</summary>
    public long? BootMs { get; init; }
    /// <summary>When the guest became ready.</summary>
    public DateTimeOffset? ReadyAt { get; init; }
    /// <summary>This boot resumed a snapshot (<c>WORKSPACE:TAG</c>) instead of booting from disk (docs/ARCHITECTURE.md "Snapshots").</summary>
    public string? RestoredFrom { get; init; }
    /// <summary>This boot was a warm start: the key of the template it restored (docs/ARCHITECTURE.md "Warm start"); null when it was not.</summary>
    public string? WarmFrom { get; init; }
    /// <summary>This boot was cold: why it did not restore a template (none yet, <c>--cold</c>, data disks, KVM, not a first start...).</summary>
    public string? ColdReason { get; init; }
    /// <summary>This cold boot captures template <c>KEY</c> once the agent is ready, before anything of the workspace is applied.</summary>
    public string? CaptureTemplate { get; init; }
    /// <summary>The template this boot captured (its key); null when it captured none.</summary>
    public string? CapturedTemplate { get; init; }
}

/// <summary>A workspace's runtime state (<c>state.json</c>), written atomically on every change.</summary>
internal sealed record WorkspaceStateRecord
{
    /// <summary>Workspace name.</summary>
    public required string Name { get; init; }
    /// <summary>Current state.</summary>
    public WorkspaceState State { get; init; }
    /// <summary>State before the last transition.</summary>
    public WorkspaceState? Previous { get; init; }
    /// <summary>Why the last transition happened.</summary>
    public string? Detail { get; init; }
    /// <summary>When the last transition happened.</summary>
    public DateTimeOffset Since { get; init; }
    /// <summary>Supervisor process id while active.</summary>
    public int? SupervisorPid { get; init; }
    /// <summary>Supervisor start time (clock ticks since boot, /proc/PID/stat field 22) against pid reuse.</summary>
    public long? SupervisorStartTime { get; init; }
    /// <summary>QEMU process id while active.</summary>
    public int? QemuPid { get; init; }
    /// <summary>The guest agent said hello.</summary>
    public bool GuestReady { get; init; }
    /// <summary>Setup is done and exec is served.</summary>
    public bool ExecReady { get; init; }
    /// <summary>Setup commands ran successfully once (they never run again).</summary>
    public bool SetupCompleted { get; init; }
    /// <summary>Last observed exec/cp/connect activity (for the idle lease).</summary>
    public DateTimeOffset? LastActivity { get; init; }
    /// <summary>The current or last boot.</summary>
    public BootRecord? Boot { get; init; }
    /// <summary>While <c>paused</c>: why (<see cref="PauseCauses"/>); null otherwise.</summary>
    public string? PauseCause { get; init; }
}

/// <summary>Why a workspace is <c>paused</c> (docs/ARCHITECTURE.md "Faults"); the reason text is the state's detail.</summary>
public static class PauseCauses
{
    /// <summary>QEMU stopped the VM because the host filesystem holding the disk is full; the supervisor resumes it by itself once space is freed.</summary>
    public const string HostDiskFull = "host_disk_full";
    /// <summary>QEMU stopped the VM on another host I/O error of the disk; the supervisor retries once the disk has space.</summary>
    public const string HostIoError = "host_io_error";
    /// <summary>A user paused it (<c>microagent pause</c>); only <c>microagent resume</c> thaws it.</summary>
    public const string User = "user";

    /// <summary>The host paused it (disk full or another disk error), not a user.</summary>
    public static bool IsHost(string? cause) => cause is HostDiskFull or HostIoError;
}

/// <summary>Source-generated JSON for workspace state files.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WorkspaceConfig))]
[JsonSerializable(typeof(WorkspaceStateRecord))]
[JsonSerializable(typeof(WorkloadResult))]
[JsonSerializable(typeof(BootRecord))]
[JsonSerializable(typeof(Containment.ContainmentRecord))]
internal sealed partial class WorkspaceJson : JsonSerializerContext;

/// <summary>Source-generated single-line JSON: events (control frames: <see cref="ControlJson"/>).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WorkspaceEvent))]
internal sealed partial class WorkspaceJsonLine : JsonSerializerContext;
