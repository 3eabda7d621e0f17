using Microagent.Errors;
using Microagent.Images;
using Microagent.Vmm;
using Microagent.Workspaces.Manager;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Workspaces;

/// <summary>Snapshots, restore in place and forks (docs/ARCHITECTURE.md "Snapshots").</summary>
public sealed partial class WorkspaceManager
{
    /// <summary>
    /// Captures snapshot <paramref name="tag"/> (default: a UTC timestamp) of a running or paused workspace: memory, devices and
    /// disk at one instant. A running workspace is paused, captured and continued; a paused one stays paused. An existing
    /// snapshot of the tag is replaced only once the new one is complete.
    /// </summary>
    public async Task<SnapshotInfo> SnapshotCreateAsync(string name, string? tag = null, CancellationToken ct = default)
    {
        tag = SnapshotStore.ValidateTag(tag ?? SnapshotStore.DefaultTag(DateTimeOffset.UtcNow));
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        var config = StatusReader.ReadConfigOrThrow(store);
        if (config.Disks.Count > 0)
            throw MicroagentException.Unsupported(
                $"workspace '{store.Name}' has data disks ({string.Join(", ", config.Disks.Select(d => d.Target))}): a snapshot holds the root disk and memory only, so a data disk would not roll back with them",
                "keep what must be snapshotted on the root disk (copy it there with `microagent cp`), or snapshot a workspace created without -v/--disk/--bundle");
        var state = _reconciler.Reconcile(store);
        if (state.State is not (WorkspaceState.Running or WorkspaceState.Paused) || PauseCauses.IsHost(state.PauseCause))
            throw new WorkspaceStateException(store.Name, state.State,
                $"workspace '{store.Name}' is {state.State.WireName()}{(PauseCauses.IsHost(state.PauseCause) ? " by the host" : "")}: only a running or paused workspace can be snapshotted",
                state.State.IsActive() ? $"wait until it runs (`microagent status {store.Name}`)" : $"start it first: `microagent start {store.Name}`");
        var response = await _control.SendAsync(store.ControlSocketPath, new ControlRequest { Type = ControlVerb.Snapshot, Tag = tag }, ct).ConfigureAwait(false);
        if (!response.Ok)
            throw MicroagentException.Permanent($"snapshot '{tag}' of workspace '{store.Name}' failed: {response.Error ?? "no reason given"}",
                $"`microagent status {store.Name}` shows its state and supervisor.log in {store.Dir} says more");
        return new SnapshotStore(store.Dir).Get(store.Name, tag);
    }

    /// <summary>The snapshots of a workspace, oldest first.</summary>
    public IReadOnlyList<SnapshotInfo> ListSnapshots(string name)
    {
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        return new SnapshotStore(store.Dir).List();
    }

    /// <summary>
    /// Deletes snapshot <paramref name="tag"/> (<c>not_found</c> when there is none) and the disk layers nothing needs any more.
    /// Refused (<c>conflict</c>) while a fork that has not started yet would restore it.
    /// </summary>
    public async Task<SnapshotInfo> SnapshotDeleteAsync(string name, string tag, CancellationToken ct = default)
    {
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        StatusReader.ReadConfigOrThrow(store);
        var snapshots = new SnapshotStore(store.Dir);
        var info = snapshots.Get(store.Name, tag);
        var waiting = PendingRestore.All(Paths).Where(p => Path.GetFullPath(p.Restore.SnapshotDir) == Path.GetFullPath(info.Directory)).Select(p => p.Workspace).ToList();
        if (waiting.Count > 0)
            throw new WorkspaceStateException(store.Name, store.ReadState().State,
                $"snapshot '{tag}' of workspace '{store.Name}' is the first start of {string.Join(", ", waiting)}",
                $"start or delete {string.Join(", ", waiting)} first");
        snapshots.Delete(tag);
        DiskLayers.Prune(Paths, store.Dir, []);
        return info;
    }

    /// <summary>
    /// Creates workspace <paramref name="name"/> as a fork of snapshot <paramref name="tag"/> of <paramref name="source"/>: the
    /// source's config (image, sizes, setup already done) with its own name and hostname, its own disk (a qcow2 overlay on the
    /// snapshot's frozen layer, no copy), and a first start that resumes the snapshot and then takes its own identity (hostname,
    /// new machine-id). Any number of forks run at once, beside the source.
    /// </summary>
    public async Task<WorkspaceStatus> ForkAsync(string name, string source, string tag, CancellationToken ct = default)
    {
        var src = Store(source);
        var srcConfig = StatusReader.ReadConfigOrThrow(src);
        var snapshot = new SnapshotStore(src.Dir).Get(src.Name, tag);
        SnapshotCompatibility.EnsureRestorable(src.Name, snapshot.Manifest);
        if (snapshot.Manifest.DiskLayer is not { } layerName || !File.Exists(DiskLayers.PathOf(src.Dir, layerName)))
            throw MicroagentException.Permanent($"snapshot '{tag}' of workspace '{src.Name}' has no disk layer", "take a new snapshot");
        var store = Store(name);
        WorkspaceValidator.Hostname(store.Name);
        StatePaths.EnsureDirectory(Paths.Workspaces);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        if (store.Exists) throw new WorkspaceExistsException(store.Name);
        bool createdDir = !Directory.Exists(store.Dir);
        StatePaths.EnsureDirectory(store.Dir);
        try
        {
            await DiskOverlay.CreateAsync(DiskLayers.PathOf(src.Dir, layerName), store.DiskPath, ct, backingFormat: "qcow2").ConfigureAwait(false);
            store.WriteConfig(srcConfig with { Name = store.Name, Hostname = store.Name, CreatedAt = DateTimeOffset.UtcNow });
            new PendingRestore { SnapshotDir = snapshot.Directory, Source = src.Name, Tag = tag, Fork = true }.Write(store.Dir);
            store.Initialize($"forked from snapshot {src.Name}:{tag}");
            store.Update(r => r with { SetupCompleted = true }); // the snapshot was taken of a workspace that ran: its setup is in it
        }
        catch
        {
            if (createdDir) Reconciler.TryDeleteDir(store.Dir);
            throw;
        }
        return StatusReader.Project(store);
    }

    /// <summary>
    /// Start's snapshot part, under the lock, before the supervisor is launched: with <paramref name="tag"/> (restore in place) the
    /// workspace must not be running, the snapshot must load (<see cref="SnapshotCompatibility"/>), its disk is rolled back (a
    /// new overlay on the snapshot's frozen layer) and the restore is recorded for the supervisor. A pending restore (a fork's
    /// first start) is checked the same way.
    /// </summary>
    private async Task PrepareRestoreAsync(WorkspaceStore store, BootRecord boot, string? tag, CancellationToken ct)
    {
        var pending = tag is null ? PendingRestore.Read(store.Dir) : null;
        if (pending is { Template: not null }) pending = null; // a warm start: WarmStart decides it again
        if (tag is null && pending is null) return;
        var snapshot = tag is not null
            ? new SnapshotStore(store.Dir).Get(store.Name, tag)
            : new SnapshotStore(Path.GetDirectoryName(Path.GetDirectoryName(pending!.SnapshotDir)!)!).Get(pending.Source, pending.Tag);
        await EnsureLoadableAsync(store.Name, snapshot.Manifest, boot, ct).ConfigureAwait(false);
        if (tag is null) return;
        string layer = DiskLayers.PathOf(store.Dir, snapshot.Manifest.DiskLayer ?? throw MicroagentException.Permanent($"snapshot '{tag}' has no disk layer", "take a new snapshot"));
        await DiskOverlay.CreateAsync(layer, store.DiskPath, ct, backingFormat: "qcow2").ConfigureAwait(false);
        new PendingRestore { SnapshotDir = snapshot.Directory, Source = store.Name, Tag = tag }.Write(store.Dir);
        DiskLayers.Prune(Paths, store.Dir, []);
    }

    /// <summary>
    /// Delete removes a workspace's snapshots and layers with it, so it is refused (<c>conflict</c>) while a fork's disk reads one of
    /// its layers or a fork would restore one of its snapshots: the forks are named and must be deleted first.
    /// </summary>
    private void EnsureNoForksDepend(WorkspaceStore store)
    {
        var forks = DiskLayers.Dependents(Paths, store.Dir);
        if (forks.Count > 0)
            throw new WorkspaceStateException(store.Name, store.Exists ? store.ReadState().State : WorkspaceState.Prepared,
                $"workspace '{store.Name}' has forks whose disks are overlays on its snapshots: {string.Join(", ", forks)}",
                $"delete them first: `microagent delete {string.Join(" ", forks)}`");
    }

    /// <summary>A restore in place needs a workspace that is not active: <c>conflict</c> telling to stop it first.</summary>
    private static void EnsureCanRestoreInPlace(WorkspaceStore store, string tag)
    {
        var state = store.ReadState().State;
        if (state.IsActive())
            throw new WorkspaceStateException(store.Name, state, $"workspace '{store.Name}' is {state.WireName()}: stop the workspace before restoring it in place",
                $"`microagent halt {store.Name}` then `microagent start {store.Name} --from-snapshot {tag}`{(state == WorkspaceState.Paused ? $"; `microagent resume {store.Name}` thaws a paused one" : "")}");
    }

    /// <summary>Refuses a snapshot the boot could not load, naming the property and both values.</summary>
    private async Task EnsureLoadableAsync(string name, SnapshotManifest snapshot, BootRecord boot, CancellationToken ct)
    {
        var assets = await BootAssets.PrepareAsync(Paths, null, ct, boot.KernelOverride, boot.Backend).ConfigureAwait(false);
        var target = new SnapshotManifest
        {
            KernelSha256 = assets.Kernel.Sha256, QemuVersion = assets.Qemu.Version.ToString(3),
            MachineType = QemuCommandLine.TcgMachineType, CpuModel = QemuCommandLine.TcgCpuModel,
            MemoryMiB = boot.MemoryMiB, Cpus = boot.Cpus, AgentVersion = await AgentBuild.CurrentAsync(ct).ConfigureAwait(false),
        };
        SnapshotCompatibility.EnsureLoadable(name, snapshot, target);
    }
}
