namespace Microagent.Models;

/// <summary>
/// One runner in the registry (<c>&lt;state&gt;/models/runners/ID.json</c>): a host process serving a model on a loopback port,
/// shared by model digest and <see cref="ModelRunnerSpec.Digest"/> and held by workspaces (docs/ARCHITECTURE.md "Model runner").
/// </summary>
public sealed record ModelRunnerRecord
{
    /// <summary>Registry id: <c>r-HEX</c> (shared) or <c>d-HEX</c> (dedicated).</summary>
    public required string Id { get; init; }
    /// <summary>The model reference it serves.</summary>
    public required string Ref { get; init; }
    /// <summary>The model's digest.</summary>
    public required string Sha256 { get; init; }
    /// <summary>The backend (llamacpp, vllm, custom).</summary>
    public required string Backend { get; init; }
    /// <summary>The runner's name (the spec's, else the backend's).</summary>
    public required string Name { get; init; }
    /// <summary>The runner configuration's digest.</summary>
    public required string ConfigDigest { get; init; }
    /// <summary>Loopback address it listens on.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>Its TCP port.</summary>
    public int Port { get; init; }
    /// <summary>Its process id (a session leader: its process group is its pid).</summary>
    public int Pid { get; init; }
    /// <summary>The process's start time (/proc/PID/stat field 22), against pid reuse.</summary>
    public long? PidStartTime { get; init; }
    /// <summary>When it started.</summary>
    public DateTimeOffset StartedAt { get; init; }
    /// <summary>Workspaces holding it.</summary>
    public IReadOnlyList<string> Holders { get; init; } = [];
    /// <summary>Kept without holders (<c>model serve</c>).</summary>
    public bool Pinned { get; init; }
    /// <summary>Private (<c>model serve --dedicated</c>): never shared with workspaces.</summary>
    public bool Dedicated { get; init; }
    /// <summary>The model name it serves, when the spec names one.</summary>
    public string? ServedModel { get; init; }
    /// <summary>The health path polled for readiness.</summary>
    public string HealthPath { get; init; } = "/health";
    /// <summary>Its stdout and stderr.</summary>
    public required string LogPath { get; init; }
    /// <summary>The argv it was started with.</summary>
    public IReadOnlyList<string> Argv { get; init; } = [];
    /// <summary>True when its process is alive now (computed when listed).</summary>
    public bool Alive { get; init; }
    /// <summary>Its URL (<c>http://HOST:PORT</c>).</summary>
    public string Url => $"http://{Host}:{Port}";
}

/// <summary>What <see cref="ModelRunnerRegistry.StopAsync"/> stopped.</summary>
/// <param name="Runners">Runner ids stopped.</param>
/// <param name="Workspaces">Workspaces that held them (their model forward now has no runner until their next start).</param>
public sealed record ModelStopResult(IReadOnlyList<string> Runners, IReadOnlyList<string> Workspaces);
