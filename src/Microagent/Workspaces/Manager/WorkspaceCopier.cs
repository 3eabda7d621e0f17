using Microagent.Agent;
using Microagent.Errors;
using Microagent.Protocol;
using Microagent.Tools;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// <c>cp</c> into and out of a running workspace: a pax archive made or unpacked on the host (<see cref="WorkspaceCopy"/>)
/// streams through the guest's <c>tar</c>, run as root with the image's environment (<see cref="GuestCommand.Tool"/>).
/// The archive is spooled to a temporary file under the state dir that is deleted on close.
/// </summary>
internal sealed class WorkspaceCopier(StatePaths paths, StatusReader status, Func<WorkspaceStore, AgentClient> agent)
{
    /// <summary>Copies a host file, directory tree or symlink into the workspace (modes kept; like <c>cp -a</c>).</summary>
    public async Task<CopyResult> CopyToAsync(WorkspaceStore store, string hostPath, string guestPath, CancellationToken ct)
    {
        var config = status.EnsureRunning(store);
        if (!File.Exists(hostPath) && !Directory.Exists(hostPath) && new FileInfo(hostPath).LinkTarget is null)
            throw MicroagentException.NotFound($"no such file or directory: {hostPath}");
        CheckGuestPath(guestPath);
        string tmp = TempFile(store);
        try
        {
            (int entries, long bytes) = (0, 0);
            await using (var archive = Spool(tmp))
            {
                (entries, bytes) = WorkspaceCopy.WriteArchive(hostPath, archive);
                archive.Position = 0;
                string baseName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(hostPath)));
                var stderr = new CappedBuffer();
                var request = GuestCommand.Tool(config, ["/bin/sh", "-c", WorkspaceCopy.ReceiveScript, "sh", guestPath, baseName]).ToRequest();
                var result = await agent(store).ExecAsync(request, archive, Stream.Null, stderr, ct).ConfigureAwait(false);
                if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
                    throw new WorkspaceCopyException($"copy into {store.Name}:{guestPath} failed: {stderr.Text().Trim()}",
                        "the guest image needs a `tar` that reads a pax archive (busybox and GNU tar do)");
            }
            return new CopyResult(hostPath, $"{store.Name}:{guestPath}", entries, bytes);
        }
        finally { File.Delete(tmp); }
    }

    /// <summary>Copies a file, directory tree or symlink out of the workspace (modes kept).</summary>
    public async Task<CopyResult> CopyFromAsync(WorkspaceStore store, string guestPath, string hostPath, CancellationToken ct)
    {
        var config = status.EnsureRunning(store);
        CheckGuestPath(guestPath);
        string tmp = TempFile(store);
        await using var archive = Spool(tmp);
        var stderr = new CappedBuffer();
        var request = GuestCommand.Tool(config, ["/bin/sh", "-c", WorkspaceCopy.SendScript, "sh", guestPath]).ToRequest();
        var result = await agent(store).ExecAsync(request, null, archive, stderr, ct).ConfigureAwait(false);
        if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
            throw new WorkspaceCopyException($"copy from {store.Name}:{guestPath} failed: {stderr.Text().Trim()}");
        archive.Position = 0;
        string trimmed = guestPath.TrimEnd('/');
        string rootName = trimmed.Length == 0 ? "/" : trimmed[(trimmed.LastIndexOf('/') + 1)..];
        var (target, entries, bytes) = WorkspaceCopy.ExtractArchive(archive, rootName, hostPath);
        return new CopyResult($"{store.Name}:{guestPath}", target, entries, bytes);
    }

    private static void CheckGuestPath(string guestPath)
    {
        if (string.IsNullOrEmpty(guestPath) || guestPath.Contains('\0'))
            throw MicroagentException.Invalid("the guest path is empty or contains NUL");
    }

    private static FileStream Spool(string path) =>
        new(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);

    private string TempFile(WorkspaceStore store)
    {
        StatePaths.EnsureDirectory(paths.Tmp);
        return Path.Combine(paths.Tmp, $"cp-{store.Name}-{Environment.ProcessId}-{Guid.NewGuid():N}.tar");
    }
}
