using Microagent.Errors;
using Microagent.Images;
using Microagent.Tools;
using Microagent.Vmm;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Workspaces.Templates;

/// <summary>How the supervisor's boot went: the VM, the restore it performed (null: a cold boot) and the boot record's warm/cold facts.</summary>
internal sealed record BootOutcome(WorkspaceVm Vm, PendingRestore? Restore, BootRecord Boot);

/// <summary>
/// The supervisor's boot (docs/ARCHITECTURE.md "Warm start", "Snapshots"): a pending restore (snapshot, fork or warm-start
/// template) or a cold boot, which captures the template its boot record names once the agent is ready, before anything of the
/// workspace is applied. A warm start that fails falls back to a cold boot on a fresh disk; so does a capture that fails (the VM
/// is put back and booting goes on). Either way the workspace's own identity (hostname, new machine-id) is applied over the
/// agent protocol, since a template and a capturing boot carry the neutral <see cref="TemplateStore.BootHostname"/>.
/// </summary>
internal static class TemplateBoot
{
    /// <summary>Boots the VM of <paramref name="store"/>.</summary>
    public static async Task<BootOutcome> BootAsync(WorkspaceStore store, WorkspaceConfig config, BootRecord boot, BootAssets assets, string agentBuild,
        GuestConnectionCap cap, Action<string> log, CancellationToken ct)
    {
        var restore = PendingRestore.Read(store.Dir);
        if (restore is not null) PendingRestore.Clear(store.Dir); // tried once: a failed restore leaves a disk that boots cold
        if (restore is { Template: { } key })
        {
            try
            {
                var vm = await SnapshotRestore.RestoreAsync(store, config, restore, assets, boot, cap, log, ct).ConfigureAwait(false);
                return new BootOutcome(vm, restore, boot with { WarmFrom = key, ColdReason = null });
            }
            catch (Exception e) when (e is MicroagentException or IOException && !ct.IsCancellationRequested)
            {
                log($"warm start from template {key} failed: {e.Message}; booting cold on a fresh disk");
                await FreshDiskAsync(store, config, ct).ConfigureAwait(false);
                boot = boot with { ColdReason = $"the warm start from template {key} failed: {WorkloadRunner.Shorten(e.Message)}" };
                restore = null;
            }
        }
        else if (restore is not null)
            return new BootOutcome(await SnapshotRestore.RestoreAsync(store, config, restore, assets, boot, cap, log, ct).ConfigureAwait(false), restore, boot);

        string? capture = boot.CaptureTemplate;
        var cold = await WorkspaceVm.BootAsync(store.Dir, assets, store.DiskPath, boot.MemoryMiB, boot.Cpus, capture is null ? config.Hostname : TemplateStore.BootHostname,
            ephemeral: boot.Ephemeral, ct, cap.Max, cap.OnRefused, Volumes.DataDisks.ToVm(config.Disks),
            capture is null ? "" : TemplateStore.BootKernelArgs).ConfigureAwait(false);
        if (capture is null) return new BootOutcome(cold, null, boot);
        try
        {
            string? captured = await CaptureAsync(store, config, boot, assets, agentBuild, cold, capture, log, ct).ConfigureAwait(false);
            await cold.Agent.SetIdentityAsync(config.Hostname, SnapshotRestore.NewMachineId(), ct).ConfigureAwait(false);
            return new BootOutcome(cold, null, boot with { CapturedTemplate = captured });
        }
        catch
        {
            await cold.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Captures template <paramref name="key"/> from a VM that just booted, under the key's lock; returns the key, or null when
    /// another maker holds the lock, a current template is already there, or the capture failed (logged; the VM runs on).
    /// </summary>
    private static async Task<string?> CaptureAsync(WorkspaceStore store, WorkspaceConfig config, BootRecord boot, BootAssets assets, string agentBuild,
        WorkspaceVm vm, string key, Action<string> log, CancellationToken ct)
    {
        var templates = new TemplateStore(store.Paths);
        var target = TemplateTarget.For(config, boot.MemoryMiB, boot.Cpus, assets, agentBuild);
        if (target.Key != key) { log($"template {key}: this boot would make {target.Key} (the host changed since start): not captured"); return null; }
        using var held = templates.TryLock(key);
        if (held is null) { log($"template {key}: another boot is capturing it"); return null; }
        if (templates.Find(key, target, out _) is not null) { log($"template {key}: already there"); return null; }
        string staging = templates.BeginCapture(key);
        try
        {
            var context = new CaptureContext(config.ImageDigest, assets.Kernel.Sha256, vm.Hello.Kernel, target.QemuVersion, boot.MemoryMiB, boot.Cpus, agentBuild);
            var capture = new SnapshotCapture(store, vm, context, e => log($"QMP event during the template capture: {e.Name}"), log);
            var (layer, steps) = await capture.CaptureIntoAsync(staging, templates.LayersDir, paused: false, ct).ConfigureAwait(false);
            bool committed = templates.Commit(staging, target with { Created = DateTimeOffset.UtcNow, KernelRelease = vm.Hello.Kernel, DiskLayer = layer, CapturedBy = store.Name });
            log($"template {key}: {(committed ? "captured" : "a current one appeared meanwhile; this capture was discarded")} ({steps})");
            return committed ? key : null;
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested && e is not SnapshotRecoveryException)
        {
            TemplateStore.Abandon(staging);
            log($"template {key}: the capture failed ({e.Message}); the boot goes on without it");
            return null;
        }
        catch
        {
            TemplateStore.Abandon(staging);
            throw;
        }
    }

    /// <summary>A new root disk on the image baseline, as create makes it (the warm start's overlay on the template is dropped).</summary>
    private static async Task FreshDiskAsync(WorkspaceStore store, WorkspaceConfig config, CancellationToken ct)
    {
        await DiskOverlay.CreateAsync(config.BaselinePath, store.DiskPath, ct).ConfigureAwait(false);
        if (new FileInfo(config.BaselinePath).Length < (long)config.SizeMiB << 20)
            await ExternalTool.RunAsync("qemu-img", "qemu-utils", ["resize", "-q", store.DiskPath, $"{config.SizeMiB}M"], ct).ConfigureAwait(false);
    }
}
