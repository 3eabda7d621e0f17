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
internal sealed class Runner(StatePaths paths)
{
    /// <summary>Captured (not streamed) output is capped per stream so the result fits one protocol frame (<see cref="WorkspaceLimits.SingleModeOutputCap"/>).</summary>
    public const long SingleModeOutputCap = WorkspaceLimits.SingleModeOutputCap;

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
    internal static string[] ResolveArgv(RunOptions options, ImageConfig config)
    {
        string[] entrypoint = options.Entrypoint is null ? config.Entrypoint ?? []
            : options.Entrypoint.Length == 0 ? [] : [options.Entrypoint];
        // As in Docker, overriding the entrypoint drops the image's Cmd.
        string[] argv = options.Command.Count > 0 || options.Entrypoint is not null
            ? [.. entrypoint, .. options.Command]
            : [.. entrypoint, .. config.Cmd ?? []];
        if (argv.Length == 0)
            throw new MicroagentException(ErrorKind.Invalid, "no command given and the image defines no Entrypoint or Cmd",
                "give a command, or use an image that defines an Entrypoint or Cmd") { Field = "command" };
        return argv;
    }

    /// <summary>The request a run of <paramref name="options"/> sends on an image with <paramref name="config"/> (see <see cref="GuestCommand"/>).</summary>
    internal static ExecRequest BuildRequest(RunOptions options, ImageConfig config) =>
        GuestCommand.On(config, ResolveArgv(options, config)).With(options).ToRequest();
}
