using Microagent.Images;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>
/// The one place a guest command's <see cref="ExecRequest"/> is made from its layers. Invariants: the environment is
/// image env, then workspace env, then the model forward's URLs (a workspace with a model), then the call's (later entries win in the agent); the working directory and user are
/// the call's, else the image's (an empty image value means none: <c>/</c> and root); a captured (single-mode) command is
/// capped at <see cref="WorkspaceLimits.SingleModeOutputCap"/> per stream unless the call says otherwise.
/// </summary>
internal sealed record GuestCommand
{
    /// <summary>Program and arguments (no implied shell).</summary>
    public required IReadOnlyList<string> Argv { get; init; }
    /// <summary>The image's Env.</summary>
    public IReadOnlyList<string> ImageEnv { get; init; } = [];
    /// <summary>The image's WorkingDir.</summary>
    public string? ImageWorkingDir { get; init; }
    /// <summary>The image's User.</summary>
    public string? ImageUser { get; init; }
    /// <summary>The workspace's environment (<see cref="WorkspaceSpec.Env"/>).</summary>
    public IReadOnlyList<string> WorkspaceEnv { get; init; } = [];
    /// <summary>The model forward's URLs when the workspace has a model (<c>MICROAGENT_MODEL_URL</c>, <c>OPENAI_BASE_URL</c>; docs/ARCHITECTURE.md "Model runner").</summary>
    public IReadOnlyList<string> ModelEnv { get; init; } = [];
    /// <summary>The call's environment.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    /// <summary>The call's working directory.</summary>
    public string? Cwd { get; init; }
    /// <summary>The call's user.</summary>
    public string? User { get; init; }
    /// <summary>Kill the command after this long.</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>Per-stream output cap; null = the mode's default.</summary>
    public long? MaxOutputBytes { get; init; }
    /// <summary>Output is streamed (stream mode) rather than captured (single mode).</summary>
    public bool Streaming { get; init; }

    /// <summary>A command in a workspace: its image defaults and its environment apply.</summary>
    public static GuestCommand In(WorkspaceConfig config, IReadOnlyList<string> argv) => new()
    {
        Argv = argv, ImageEnv = config.ImageEnv, ImageWorkingDir = config.ImageWorkingDir, ImageUser = config.ImageUser, WorkspaceEnv = config.Env,
        ModelEnv = config.Model is null ? [] : [$"MICROAGENT_MODEL_URL={ModelInfo.BaseUrl}", $"OPENAI_BASE_URL={ModelInfo.BaseUrl}"],
    };

    /// <summary>A command on an image with no workspace environment (one-shot runs resolve against the image this way).</summary>
    public static GuestCommand On(ImageConfig image, IReadOnlyList<string> argv) => new()
    {
        Argv = argv, ImageEnv = image.Env, ImageWorkingDir = image.WorkingDir, ImageUser = image.User,
    };

    /// <summary>
    /// <c>/bin/sh -c CMD</c> in a workspace, captured with <paramref name="cap"/> per stream: what setup commands and
    /// the workload run as (the supervisor's former <c>ShellRequest</c>).
    /// </summary>
    public static GuestCommand Shell(WorkspaceConfig config, string cmd, long cap) =>
        In(config, ["/bin/sh", "-c", cmd]) with { MaxOutputBytes = cap };

    /// <summary>
    /// A host-side tool run in a workspace (cp's tar): image env only, as root in <c>/</c>, streamed, uncapped;
    /// the image's User and WorkingDir do not apply, so a copy can write wherever root can.
    /// </summary>
    public static GuestCommand Tool(WorkspaceConfig config, IReadOnlyList<string> argv) => new()
    {
        Argv = argv, ImageEnv = config.ImageEnv, Streaming = true,
    };

    /// <summary>This command with the per-call overrides of an exec.</summary>
    public GuestCommand With(ExecOptions call, bool streaming) => this with
    {
        Env = call.Env, Cwd = call.Cwd, User = call.User, Timeout = call.Timeout, MaxOutputBytes = call.MaxOutputBytes, Streaming = streaming,
    };

    /// <summary>This command with the per-call overrides of a one-shot run.</summary>
    public GuestCommand With(RunOptions run) => this with
    {
        Env = run.Env, Cwd = run.Cwd, User = run.User, Timeout = run.Timeout, MaxOutputBytes = run.MaxOutputBytes,
        Streaming = run.Stdout is not null || run.Stderr is not null,
    };

    /// <summary>The protocol request.</summary>
    public ExecRequest ToRequest() => new()
    {
        Argv = [.. Argv],
        Env = [.. ImageEnv, .. WorkspaceEnv, .. ModelEnv, .. Env],
        Cwd = Cwd ?? NoneIfEmpty(ImageWorkingDir),
        User = User ?? NoneIfEmpty(ImageUser),
        TimeoutMs = Timeout is { } t ? (long)Math.Ceiling(t.TotalMilliseconds) : null,
        MaxOutputBytes = MaxOutputBytes ?? (Streaming ? null : WorkspaceLimits.SingleModeOutputCap),
        Mode = Streaming ? ExecModes.Stream : ExecModes.Single,
    };

    private static string? NoneIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
