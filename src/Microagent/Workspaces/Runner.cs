using Microagent.Errors;
using Microagent.Images;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>
/// One-shot runs: a fresh workspace (overlay on the image baseline), boot, one command, power off,
/// delete — built on <see cref="WorkspaceManager"/>. Invariant: whatever happens (failure, cancellation/Ctrl-C,
/// even SIGKILL of the caller: the supervisor watches its owner), the VM is gone afterwards and the workspace
/// directory is removed unless <see cref="RunOptions.Keep"/>.
/// </summary>
public sealed class Runner(StatePaths paths)
{
    /// <summary>Captured (not streamed) output is capped per stream so the result fits one protocol frame.</summary>
    public const long SingleModeOutputCap = 4 * 1024 * 1024;

    /// <summary>Runs <paramref name="options"/>.Command in a brand-new VM (through <see cref="WorkspaceManager.RunAsync"/>).</summary>
    public Task<RunResult> RunAsync(RunOptions options, CancellationToken ct = default) => new WorkspaceManager(paths).RunAsync(options, ct);

    /// <summary>The process exit code a CLI should use for <paramref name="result"/>.</summary>
    public static int ExitCodeOf(ExecResult result) => result.Status switch
    {
        ExecStatuses.Exited => result.ExitCode,
        ExecStatuses.Signaled => 128 + (result.Signal ?? 0),
        ExecStatuses.TimedOut => 124,
        ExecStatuses.FailedToStart => result.ExitCode is 126 or 127 ? result.ExitCode : 127,
        _ => result.ExitCode,
    };

    /// <summary>Docker semantics: the trailing command replaces Cmd and is appended to Entrypoint; <see cref="RunOptions.Entrypoint"/> replaces Entrypoint and drops Cmd.</summary>
    internal static ExecRequest BuildRequest(RunOptions options, ImageConfig config)
    {
        string[] entrypoint = options.Entrypoint is null ? config.Entrypoint ?? []
            : options.Entrypoint.Length == 0 ? [] : [options.Entrypoint];
        // As in Docker, overriding the entrypoint drops the image's Cmd.
        string[] argv = options.Command.Count > 0 || options.Entrypoint is not null
            ? [.. entrypoint, .. options.Command]
            : [.. entrypoint, .. config.Cmd ?? []];
        if (argv.Length == 0)
            throw MicroagentException.Invalid("no command given and the image defines no Entrypoint or Cmd", "pass the command after `--`");
        bool streaming = options.Stdout is not null || options.Stderr is not null;
        return new ExecRequest
        {
            Argv = argv,
            Env = [.. config.Env, .. options.Env],
            Cwd = options.Cwd ?? (string.IsNullOrEmpty(config.WorkingDir) ? null : config.WorkingDir),
            User = options.User ?? (string.IsNullOrEmpty(config.User) ? null : config.User),
            TimeoutMs = options.Timeout is { } t ? (long)t.TotalMilliseconds : null,
            MaxOutputBytes = options.MaxOutputBytes ?? (streaming ? null : SingleModeOutputCap),
            Mode = streaming ? ExecModes.Stream : ExecModes.Single,
        };
    }

    internal static void Validate(RunOptions options)
    {
        if (options.MemoryMiB is < 128 or > 65536)
            throw MicroagentException.Invalid($"--memory {options.MemoryMiB} is out of range", "use 128..65536 MiB");
        if (options.Cpus is < 1 or > 64)
            throw MicroagentException.Invalid($"--cpus {options.Cpus} is out of range", "use 1..64");
        if (options.Timeout is { } t && t <= TimeSpan.Zero)
            throw MicroagentException.Invalid("--timeout must be positive");
        foreach (string e in options.Env)
            if (!e.Contains('=') || e.StartsWith('='))
                throw MicroagentException.Invalid($"environment entry '{e}' is not KEY=VALUE");
    }
}
