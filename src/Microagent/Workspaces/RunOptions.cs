using Microagent.Networking;

namespace Microagent.Workspaces;

/// <summary>Options for a one-shot run: boot a fresh workspace, run one command, throw the VM away.</summary>
public sealed record RunOptions
{
    /// <summary>Program and arguments (no implied shell). Empty = the image's Entrypoint + Cmd.</summary>
    public IReadOnlyList<string> Command { get; init; } = [];
    /// <summary>Replaces the image's Entrypoint (Docker <c>--entrypoint</c>): its Cmd is then ignored; "" clears the Entrypoint.</summary>
    public string? Entrypoint { get; init; }
    /// <summary>Image reference; null = the embedded default image.</summary>
    public string? Image { get; init; }
    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; } = 256;
    /// <summary>Virtual CPUs.</summary>
    public int Cpus { get; init; } = 1;
    /// <summary>Kill the command after this long (exit 124). Null = no limit.</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>Data disks mounted in the guest for the run (<see cref="WorkspaceSpec.Disks"/>).</summary>
    public IReadOnlyList<Volumes.DiskRequest> Disks { get; init; } = [];
    /// <summary>Keep the workspace directory (disk, serial log, result) after the run.</summary>
    public bool Keep { get; init; }
    /// <summary>Extra environment entries (KEY=VALUE) over the image's.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    /// <summary>Working directory in the guest; null = the image's WorkingDir or /.</summary>
    public string? Cwd { get; init; }
    /// <summary>User in the guest (name, uid or uid:gid); null = the image's User or root.</summary>
    public string? User { get; init; }
    /// <summary>Per-stream output cap in bytes; null = unlimited.</summary>
    public long? MaxOutputBytes { get; init; }
    /// <summary>Streamed to the command's stdin until it ends; null = empty stdin.</summary>
    public Stream? Stdin { get; init; }
    /// <summary>Receives stdout live; null = capture it into the result.</summary>
    public Stream? Stdout { get; init; }
    /// <summary>Receives stderr live; null = capture it into the result.</summary>
    public Stream? Stderr { get; init; }
    /// <summary>The network (mode, egress policy, published ports); null = user mode, default policy.</summary>
    public NetworkSpec? Network { get; init; }
    /// <summary>Boot this kernel image file (a copy of an installed kernel) instead of the default (<see cref="StartOptions.Kernel"/>).</summary>
    public string? Kernel { get; init; }
    /// <summary>The guest architecture; only x86_64 (amd64) is supported (<see cref="StartOptions.Arch"/>).</summary>
    public string? Arch { get; init; }
    /// <summary><c>qemu-kvm</c> or <c>qemu-tcg</c>; null = the probe's choice (<see cref="StartOptions.Backend"/>).</summary>
    public string? Backend { get; init; }
    /// <summary>The supervisor executable (<see cref="StartOptions.SupervisorExecutable"/>).</summary>
    public string? SupervisorExecutable { get; init; }
    /// <summary>The model pairing of the run's workspace (<see cref="WorkspaceSpec.Model"/>); null = none.</summary>
    public Models.ModelSpec? Model { get; init; }
    /// <summary>Phase messages for a progress display.</summary>
    public IProgress<string>? Progress { get; init; }
    /// <summary>Boot cold instead of restoring the warm-start template of the run's image and sizes (docs/ARCHITECTURE.md "Warm start").</summary>
    public bool Cold { get; init; }
}

/// <summary>Wall time of each phase of a run, in milliseconds.</summary>
/// <param name="PrepareMs">Kernel verification, initramfs, image baseline, disk overlay.</param>
/// <param name="BootMs">QEMU start until the guest agent said hello.</param>
/// <param name="ExecMs">The command, from request to result.</param>
/// <param name="TeardownMs">Guest power-off, QEMU exit, cleanup.</param>
/// <param name="TotalMs">Everything.</param>
public sealed record RunTimings(long PrepareMs, long BootMs, long ExecMs, long TeardownMs, long TotalMs);

/// <summary>The outcome of a run.</summary>
/// <param name="WorkspaceId">Generated workspace name.</param>
/// <param name="Status">exited, signaled, timed_out or failed_to_start.</param>
/// <param name="ExitCode">The code to exit with: the guest's code, 128+signal, 124 on timeout, 127/126 when not started.</param>
/// <param name="Signal">Signal number when signaled.</param>
/// <param name="Stdout">Captured stdout when it was not streamed.</param>
/// <param name="Stderr">Captured stderr when it was not streamed.</param>
/// <param name="StdoutTruncated">stdout hit the output cap.</param>
/// <param name="StderrTruncated">stderr hit the output cap.</param>
/// <param name="Error">Why the command did not start, when it did not.</param>
/// <param name="Accelerator">tcg or kvm.</param>
/// <param name="Timings">Phase timings.</param>
/// <param name="KeptAt">Workspace directory when kept.</param>
public sealed record RunResult(
    string WorkspaceId, string Status, int ExitCode, int? Signal,
    byte[]? Stdout, byte[]? Stderr, bool StdoutTruncated, bool StderrTruncated, string? Error,
    string Accelerator, RunTimings Timings, string? KeptAt)
{
    /// <summary>The run's VM was a warm start: the key of the template it restored (docs/ARCHITECTURE.md "Warm start"); null when it booted cold.</summary>
    public string? WarmFrom { get; init; }
    /// <summary>Why the run's VM booted cold (no template yet, <c>Cold</c>, data disks, KVM...); null for a warm start.</summary>
    public string? ColdReason { get; init; }
}
