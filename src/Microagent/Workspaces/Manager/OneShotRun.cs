using System.Diagnostics;
using System.Security.Cryptography;
using Microagent.Images;
using Microagent.Tools;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// A one-shot run on the workspace verbs (see <see cref="WorkspaceManager.RunAsync"/>). Invariant: unless it succeeded
/// with <see cref="RunOptions.Keep"/>, its workspace is deleted however it ends; it is the only verb that tears down
/// the workspace it made.
/// </summary>
internal sealed class OneShotRun(WorkspaceManager manager)
{
    public async Task<RunResult> RunAsync(RunOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        WorkspaceValidator.Run(options);
        var total = Stopwatch.StartNew();
        StatePaths.EnsureDirectory(manager.Paths.Root);
        string id = "run-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        var store = new WorkspaceStore(manager.Paths, id);
        bool keep = false;
        // The command is resolved against the image before anything boots: no command and no Entrypoint/Cmd is invalid.
        var image = await new ImageStore(manager.Paths).EnsureBaselineAsync(options.Image, options.Progress, ct).ConfigureAwait(false);
        string[] argv = Runner.ResolveArgv(options, image.Config);
        try
        {
            await manager.CreateAsync(new WorkspaceSpec { Name = id, Image = options.Image, MemoryMiB = options.MemoryMiB, Cpus = options.Cpus, Disks = options.Disks, Network = options.Network, Model = options.Model }, ct, options.Progress)
                .ConfigureAwait(false);
            long prepareMs = total.ElapsedMilliseconds;
            var phase = Stopwatch.StartNew();
            var status = await manager.StartAsync(id, new StartOptions
            {
                OwnerPid = Environment.ProcessId, Ephemeral = !options.Keep, Progress = options.Progress, Cold = options.Cold,
                Kernel = options.Kernel, Arch = options.Arch, Backend = options.Backend, SupervisorExecutable = options.SupervisorExecutable,
                Model = options.Model is { } m ? new Models.ModelSpec { Env = m.Env } : null,
            }, ct)
                .ConfigureAwait(false);
            long bootMs = phase.ElapsedMilliseconds;

            phase.Restart();
            // The workspace was created from this image: its config carries the defaults the argv was resolved against.
            var result = await manager.ExecCoreAsync(store, config => GuestCommand.In(config, argv).With(options), options.Stdin, options.Stdout, options.Stderr, ct)
                .ConfigureAwait(false);
            long execMs = phase.ElapsedMilliseconds;

            phase.Restart();
            if (options.Keep) await manager.HaltAsync(id, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
            else await manager.DeleteAsync(id, new DeleteOptions { Force = true }, ct).ConfigureAwait(false);
            keep = options.Keep;
            long teardownMs = phase.ElapsedMilliseconds;
            var timings = new RunTimings(prepareMs, bootMs, execMs, teardownMs, total.ElapsedMilliseconds);
            return new RunResult(id, result.Status, result.ExitCode, result.Signal, result.Stdout, result.Stderr,
                result.StdoutTruncated, result.StderrTruncated, result.Error, status.Boot?.Accelerator ?? "", timings, keep ? store.Dir : null)
            {
                WarmFrom = status.Boot?.WarmFrom,
                ColdReason = status.Boot?.WarmFrom is null ? status.Boot?.ColdReason : null,
            };
        }
        catch (OperationCanceledException e)
        {
            // The finally below removes the workspace before this propagates.
            throw new WorkspaceInterruptedException(id, null, $"run {id} was interrupted: its VM was killed and its workspace removed; nothing was kept", e,
                e.CancellationToken);
        }
        finally
        {
            if (!keep)
            {
                await manager.DeleteAsync(id, new DeleteOptions { Force = true }, CancellationToken.None).ConfigureAwait(false);
                // A random one-shot name is never locked by anyone else: its lock file goes with it.
                using (var l = FileLock.TryAcquire(store.LockPath)) if (l is not null) File.Delete(store.LockPath);
            }
        }
    }
}
