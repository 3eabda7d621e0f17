using System.Diagnostics;
using System.Security.Cryptography;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>
/// One-shot runs: a fresh workspace (overlay on the image baseline), boot, one command, power off,
/// delete. Invariant: whatever happens (failure, cancellation/Ctrl-C), the VM is gone afterwards
/// and the workspace directory is removed unless <see cref="RunOptions.Keep"/>.
/// </summary>
public sealed class Runner(StatePaths paths)
{
    private static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(5);

    /// <summary>Captured (not streamed) output is capped per stream so the result fits one protocol frame.</summary>
    public const long SingleModeOutputCap = 4 * 1024 * 1024;

    /// <summary>Runs <paramref name="options"/>.Command in a brand-new VM.</summary>
    public async Task<RunResult> RunAsync(RunOptions options, CancellationToken ct = default)
    {
        Validate(options);
        var total = Stopwatch.StartNew();
        // Progress reports only long work (kernel install, image baseline build), never each boot.
        var progress = options.Progress;

        StatePaths.EnsureDirectory(paths.Root);
        var assets = await BootAssets.PrepareAsync(paths, options.Image, progress, ct).ConfigureAwait(false);

        string id = "run-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        StatePaths.EnsureDirectory(paths.Workspaces);
        string dir = StatePaths.EnsureDirectory(Path.Combine(paths.Workspaces, id));
        bool keep = false;
        WorkspaceVm? vm = null;
        try
        {
            string disk = Path.Combine(dir, "root.qcow2");
            await DiskOverlay.CreateAsync(assets.Baseline.Path, disk, ct).ConfigureAwait(false);
            long prepareMs = total.ElapsedMilliseconds;

            var phase = Stopwatch.StartNew();
            vm = await WorkspaceVm.BootAsync(dir, assets, disk, options.MemoryMiB, options.Cpus, id, ephemeral: !options.Keep, ct).ConfigureAwait(false);
            long bootMs = phase.ElapsedMilliseconds;

            phase.Restart();
            var request = BuildRequest(options, assets.Baseline.Config);
            ExecResult result;
            try
            {
                result = await vm.Agent.ExecAsync(request, options.Stdin, options.Stdout, options.Stderr, ct).ConfigureAwait(false);
            }
            catch (MicroagentException) when (vm.Exited.IsCompleted)
            {
                throw MicroagentException.Permanent("the VM stopped while the command was running",
                    $"guest serial log tail:\n{WorkspaceVm.Tail(Path.Combine(dir, WorkspaceVm.Files.SerialLog))}");
            }
            long execMs = phase.ElapsedMilliseconds;

            phase.Restart();
            await vm.ShutdownAsync(ShutdownGrace, ct).ConfigureAwait(false);
            await vm.DisposeAsync().ConfigureAwait(false);
            vm = null;
            long teardownMs = phase.ElapsedMilliseconds;
            keep = options.Keep;

            var timings = new RunTimings(prepareMs, bootMs, execMs, teardownMs, total.ElapsedMilliseconds);
            return new RunResult(id, result.Status, ExitCodeOf(result), result.Signal,
                result.Stdout, result.Stderr, result.StdoutTruncated, result.StderrTruncated, result.Error,
                assets.Accelerator.Accelerator.ToString().ToLowerInvariant(), timings, keep ? dir : null);
        }
        finally
        {
            if (vm is not null) await vm.DisposeAsync().ConfigureAwait(false);
            if (!keep) TryDelete(dir);
        }
    }

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

    private static void Validate(RunOptions options)
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

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { }
    }
}
