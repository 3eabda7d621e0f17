using Microagent.Access;
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
        var (entries, bytes) = await SendAsync(store, config, archive => WorkspaceCopy.WriteArchive(hostPath, archive), hostPath, guestPath, ct)
            .ConfigureAwait(false);
        return new CopyResult(hostPath, $"{store.Name}:{guestPath}", entries, bytes);
    }

    /// <summary>
    /// Copies a host file or directory tree into the workspace when <paramref name="access"/> allows it: the path is pinned
    /// (symlinks followed, the result inside a root) before the guest is contacted, and read through the pin.
    /// </summary>
    public async Task<CopyResult> CopyToAsync(WorkspaceStore store, string hostPath, string guestPath, HostAccess access, CancellationToken ct)
    {
        CheckGuestPath(guestPath);
        using var source = access.OpenSource(hostPath);
        var config = status.EnsureRunning(store);
        var (entries, bytes) = await SendAsync(store, config, archive => WorkspaceCopy.WriteArchive(source, archive), hostPath, guestPath, ct)
            .ConfigureAwait(false);
        return new CopyResult(source.RealPath, $"{store.Name}:{guestPath}", entries, bytes);
    }

    private async Task<(int Entries, long Bytes)> SendAsync(WorkspaceStore store, WorkspaceConfig config, Func<Stream, (int, long)> write,
        string hostPath, string guestPath, CancellationToken ct)
    {
        string tmp = TempFile(store);
        try
        {
            await using var archive = Spool(tmp);
            var (entries, bytes) = write(archive);
            archive.Position = 0;
            string baseName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(hostPath)));
            var stderr = new CappedBuffer();
            var request = GuestCommand.Tool(config, ["/bin/sh", "-c", WorkspaceCopy.ReceiveScript, "sh", guestPath, baseName]).ToRequest();
            var result = await agent(store).ExecAsync(request, archive, Stream.Null, stderr, ct).ConfigureAwait(false);
            if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
                throw new WorkspaceCopyException($"copy into {store.Name}:{guestPath} failed: {stderr.Text().Trim()}",
                    "the guest image needs a `tar` that reads a pax archive (busybox and GNU tar do)");
            return (entries, bytes);
        }
        finally { File.Delete(tmp); }
    }

    /// <summary>Copies a file, directory tree or symlink out of the workspace (modes kept).</summary>
    public async Task<CopyResult> CopyFromAsync(WorkspaceStore store, string guestPath, string hostPath, CancellationToken ct)
    {
        var config = status.EnsureRunning(store);
        CheckGuestPath(guestPath);
        await using var archive = await FetchAsync(store, config, guestPath, ct).ConfigureAwait(false);
        var (target, entries, bytes) = WorkspaceCopy.ExtractArchive(archive, RootName(guestPath), hostPath);
        return new CopyResult($"{store.Name}:{guestPath}", target, entries, bytes);
    }

    /// <summary>
    /// Copies out of the workspace when <paramref name="access"/> allows it: the destination's directory is pinned inside
    /// a root before the guest is contacted and the copy is written below that pin; an existing destination is replaced only
    /// with <paramref name="overwrite"/> (a symlink there is replaced, never followed). The result names the final path.
    /// </summary>
    public async Task<CopyResult> CopyFromAsync(WorkspaceStore store, string guestPath, string hostPath, HostAccess access, bool overwrite,
        CancellationToken ct)
    {
        CheckGuestPath(guestPath);
        string rootName = RootName(guestPath);
        WorkspaceCopy.CheckRootName(rootName);
        using var destination = access.OpenDestination(hostPath, rootName, overwrite);
        var config = status.EnsureRunning(store);
        await using var archive = await FetchAsync(store, config, guestPath, ct).ConfigureAwait(false);
        var (_, entries, bytes) = WorkspaceCopy.ExtractTo(archive, rootName, destination.ProcPath, exclusive: !overwrite);
        return new CopyResult($"{store.Name}:{guestPath}", destination.RealPath, entries, bytes);
    }

    private async Task<FileStream> FetchAsync(WorkspaceStore store, WorkspaceConfig config, string guestPath, CancellationToken ct)
    {
        var archive = Spool(TempFile(store));
        try
        {
            var stderr = new CappedBuffer();
            var request = GuestCommand.Tool(config, ["/bin/sh", "-c", WorkspaceCopy.SendScript, "sh", guestPath]).ToRequest();
            var result = await agent(store).ExecAsync(request, null, archive, stderr, ct).ConfigureAwait(false);
            if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
                throw new WorkspaceCopyException($"copy from {store.Name}:{guestPath} failed: {stderr.Text().Trim()}");
            archive.Position = 0;
            return archive;
        }
        catch
        {
            await archive.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static string RootName(string guestPath)
    {
        string trimmed = guestPath.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed[(trimmed.LastIndexOf('/') + 1)..];
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
