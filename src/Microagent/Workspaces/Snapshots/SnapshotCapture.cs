using System.Diagnostics;
using Microagent.Errors;
using Microagent.Vmm;

namespace Microagent.Workspaces.Snapshots;

/// <summary>What a capture records about the boot beside what the VM knows (the supervisor's boot record).</summary>
internal sealed record CaptureContext(string? ImageDigest, string KernelSha256, string? KernelRelease, string QemuVersion, int MemoryMiB, int Cpus,
    string AgentBuild);

/// <summary>
/// Takes a snapshot of a running or user-paused VM (docs/ARCHITECTURE.md "Snapshots"), inside the supervise loop: unplug the
/// vsock device (live guest connections are reset), stop the vCPUs, freeze the disk's top layer (a hard link into
/// <c>layers/</c> is the frozen layer; a new overlay takes the writes and becomes <c>root.qcow2</c> once QEMU exits), save the VM state into
/// the staging directory, plug vsock back, continue (a paused guest stays paused), then commit the staging directory by rename.
/// A failure before the commit removes the staging directory: the previous snapshot of that tag is untouched. The caller puts
/// the VM back to running (or records it failed) when this throws.
/// </summary>
internal sealed class SnapshotCapture(WorkspaceStore store, WorkspaceVm vm, CaptureContext context, Action<QmpEvent> otherEvent, Action<string> log)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Captures tag <paramref name="tag"/>; <paramref name="paused"/>: the user paused the guest and it stays paused.</summary>
    public async Task<SnapshotInfo> CaptureAsync(string tag, bool paused, CancellationToken ct)
    {
        var snapshots = new SnapshotStore(store.Dir);
        string staging = snapshots.BeginCapture(tag);
        try
        {
            var (layer, steps) = await CaptureIntoAsync(staging, DiskLayers.Dir(store.Dir), paused, ct).ConfigureAwait(false);
            var manifest = new SnapshotManifest
            {
                Tag = tag, Created = DateTimeOffset.UtcNow, Workspace = store.Name, ImageDigest = context.ImageDigest,
                KernelSha256 = context.KernelSha256, KernelRelease = context.KernelRelease, QemuVersion = context.QemuVersion,
                MachineType = QemuCommandLine.TcgMachineType, CpuModel = QemuCommandLine.TcgCpuModel,
                MemoryMiB = context.MemoryMiB, Cpus = context.Cpus, AgentVersion = context.AgentBuild,
                DiskLayer = layer, BootHostname = vm.BootHostname,
            };
            var info = snapshots.Commit(staging, manifest);
            log($"snapshot '{tag}': {steps}");
            return info;
        }
        catch
        {
            SnapshotStore.Abandon(staging);
            throw;
        }
    }

    /// <summary>
    /// A forensic capture of a frozen guest (docs/ARCHITECTURE.md "Quarantine"): the disk's top layer frozen as for a snapshot and
    /// the memory dumped as an ELF core (<c>dump-guest-memory</c>); the guest never runs and the vsock device stays where it is.
    /// The manifest says <see cref="SnapshotManifest.Forensic"/>: it is not restorable. A failure removes the staging directory
    /// and leaves the guest as it was (frozen).
    /// </summary>
    public async Task<SnapshotInfo> CaptureForensicAsync(string tag, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(StepTimeout);
        var snapshots = new SnapshotStore(store.Dir);
        string staging = snapshots.BeginCapture(tag);
        var sw = Stopwatch.StartNew();
        try
        {
            string layer = await FreezeDiskAsync(DiskLayers.Dir(store.Dir), timeout.Token).ConfigureAwait(false);
            long frozen = sw.ElapsedMilliseconds;
            await vm.DumpMemoryAsync(Path.Combine(staging, SnapshotStore.ForensicMemoryFile), timeout.Token).ConfigureAwait(false);
            var manifest = new SnapshotManifest
            {
                Tag = tag, Created = DateTimeOffset.UtcNow, Workspace = store.Name, ImageDigest = context.ImageDigest,
                KernelSha256 = context.KernelSha256, KernelRelease = context.KernelRelease, QemuVersion = context.QemuVersion,
                MachineType = vm.CanSnapshot ? QemuCommandLine.TcgMachineType : "microvm", CpuModel = vm.CanSnapshot ? QemuCommandLine.TcgCpuModel : "host",
                MemoryMiB = context.MemoryMiB, Cpus = context.Cpus, AgentVersion = context.AgentBuild,
                DiskLayer = layer, BootHostname = vm.BootHostname, Forensic = true,
            };
            var info = snapshots.Commit(staging, manifest);
            log($"forensic snapshot '{tag}': disk frozen {frozen} ms, memory dumped, done {sw.ElapsedMilliseconds} ms");
            return info;
        }
        catch
        {
            SnapshotStore.Abandon(staging);
            throw;
        }
    }

    /// <summary>
    /// The steps every capture takes (a snapshot, a warm-start template: docs/ARCHITECTURE.md "Snapshots"): unplug vsock, stop,
    /// freeze the disk's top layer into <paramref name="layersDir"/>, save the VM state into <paramref name="staging"/>, plug vsock
    /// back, continue (unless <paramref name="paused"/>) and wait for the agent. Returns the layer's file name and the step
    /// timings. A failure with QEMU alive puts the VM back (or throws <see cref="SnapshotRecoveryException"/>) before it propagates;
    /// the caller removes <paramref name="staging"/>.
    /// </summary>
    internal async Task<(string Layer, string Steps)> CaptureIntoAsync(string staging, string layersDir, bool paused, CancellationToken ct)
    {
        if (!vm.CanSnapshot)
            throw MicroagentException.Unsupported("snapshots need the pc machine (TCG): under KVM the microvm vsock device cannot be hot-plugged");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(StepTimeout);
        var t = timeout.Token;
        var sw = Stopwatch.StartNew();
        try
        {
            QmpSnapshot.WaitEvent wait = (n, m, c) => vm.WaitEventAsync(n, m, otherEvent, c);
            if (paused) await vm.ContinueAsync(t).ConfigureAwait(false); // the guest ejects the device itself: it has to run
            await vm.UnplugVsockAsync(wait, t).ConfigureAwait(false);
            long unplugged = sw.ElapsedMilliseconds;
            await vm.StopAsync(t).ConfigureAwait(false);
            string layer = await FreezeDiskAsync(layersDir, t).ConfigureAwait(false);
            long frozen = sw.ElapsedMilliseconds;
            await vm.SaveStateAsync(wait, Path.Combine(staging, SnapshotStore.MemoryFile), t).ConfigureAwait(false);
            long saved = sw.ElapsedMilliseconds;
            await vm.PlugVsockAsync(t).ConfigureAwait(false);
            if (!paused)
            {
                await vm.ContinueAsync(t).ConfigureAwait(false);
                await vm.WaitForAgentAsync(t).ConfigureAwait(false); // the guest probes the re-plugged device first: retry the first connection
            }
            return (layer, $"vsock unplugged {unplugged} ms, disk frozen {frozen} ms, state saved {saved} ms, done {sw.ElapsedMilliseconds} ms");
        }
        catch (Exception e) when (!vm.Exited.IsCompleted)
        {
            log($"capture failed: {e.Message}; putting the VM back");
            await RecoverAsync(paused, ct).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>After a failed capture with QEMU alive: vsock plugged (it may still be), the guest running (unless paused) and answering; else <see cref="SnapshotRecoveryException"/>.</summary>
    private async Task RecoverAsync(bool paused, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(StepTimeout);
            try { await vm.PlugVsockAsync(timeout.Token).ConfigureAwait(false); }
            catch (MicroagentException e) { log($"vsock plug after the failed capture: {e.Message}"); } // still plugged: a duplicate id
            await vm.ContinueAsync(timeout.Token).ConfigureAwait(false);
            await vm.WaitForAgentAsync(timeout.Token).ConfigureAwait(false);
            if (paused) await vm.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new SnapshotRecoveryException(e.Message, e);
        }
    }

    /// <summary>
    /// Freezes the disk's top layer into <paramref name="layersDir"/> and returns its name. QEMU reopens its images by file name (when it
    /// deactivates them at the end of the save, and after), so no name it opened may move while it runs: the frozen layer gets a
    /// second name (a hard link) and the new overlay keeps its own (<see cref="WorkspaceVm.ActiveDisk"/>) until QEMU is gone.
    /// </summary>
    private async Task<string> FreezeDiskAsync(string layersDir, CancellationToken ct)
    {
        string name = DiskLayers.NewName();
        string layer = Path.Combine(layersDir, name);
        StatePaths.EnsureDirectory(layersDir);
        string next = Path.Combine(store.Dir, $"{WorkspaceVm.NextDiskPrefix}{Guid.NewGuid():N}.qcow2");
        Interop.FileNodes.HardLink(vm.ActiveDisk, layer);
        try
        {
            await vm.FreezeDiskAsync(next, "snap-" + name[..12], layer, ct).ConfigureAwait(false);
        }
        catch
        {
            if (!File.Exists(next)) TryDelete(layer); // QEMU did not switch to a new overlay: the layer is not frozen
            throw;
        }
        vm.ActiveDisk = next;
        File.SetUnixFileMode(next, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(layer, UnixFileMode.UserRead);
        return name;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A failed capture could not put the VM back in order: the supervisor stops it and records <c>failed</c>.</summary>
internal sealed class SnapshotRecoveryException(string message, Exception inner)
    : MicroagentException(ErrorKind.Permanent, $"the snapshot failed and the VM could not be put back: {message}", "start the workspace again", inner);
