using Microagent.Errors;
using Microagent.Images;
using Microagent.Workspaces.Snapshots;
using Microagent.Workspaces.Templates;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// Start's warm-start decision (docs/ARCHITECTURE.md "Warm start"), under the workspace lock, just before the supervisor is
/// launched. A workspace's first start (state <c>prepared</c>, no fork or restore pending, no <c>--cold</c>) that a template can
/// serve restores the template of its key: its disk becomes a new overlay on the template's frozen layer and a
/// <see cref="PendingRestore"/> names the template. With no current template of the key the boot is cold and captures one. Every
/// other boot is cold, and the boot record says why.
/// </summary>
internal static class WarmStart
{
    /// <summary>The boot record with the decision in it; for a warm start, the disk and <c>restore.json</c> are ready.</summary>
    public static async Task<BootRecord> PrepareAsync(StatePaths paths, WorkspaceStore store, WorkspaceConfig config, BootRecord boot, StartOptions options,
        CancellationToken ct)
    {
        if (options.FromSnapshot is not null) return boot;
        var pending = PendingRestore.Read(store.Dir);
        if (pending is { Template: null }) return boot; // a fork's first start resumes its snapshot
        if (pending is not null) PendingRestore.Clear(store.Dir); // a warm start whose supervisor never ran: decide again
        string? cold = options.Cold ? "--cold was given"
            : store.ReadState().State != WorkspaceState.Prepared ? "not the workspace's first start: it boots from its own disk"
            : null;
        if (cold is not null) return boot with { ColdReason = cold };
        BootAssets assets;
        string agentBuild;
        try
        {
            assets = await BootAssets.PrepareAsync(paths, null, ct).ConfigureAwait(false);
            agentBuild = await AgentBuild.CurrentAsync(ct).ConfigureAwait(false);
        }
        catch (MicroagentException e) when (e.Kind == ErrorKind.NotFound)
        {
            // This process cannot see the boot assets the supervisor will (a library host without the agent beside it): the
            // template key cannot be computed here, so the boot is cold and the supervisor reports any real problem.
            return boot with { ColdReason = $"the template key cannot be computed in this process: {e.Message}" };
        }
        if (TemplateTarget.Unservable(config, assets) is { } why) return boot with { ColdReason = why };
        var target = TemplateTarget.For(config, boot.MemoryMiB, boot.Cpus, assets, agentBuild);
        var templates = new TemplateStore(paths);
        if (templates.Find(target.Key, target, out string missing) is not { } template)
            return boot with { ColdReason = missing, CaptureTemplate = target.Key };
        await DiskOverlay.CreateAsync(templates.LayerPath(template), store.DiskPath, ct, backingFormat: "qcow2").ConfigureAwait(false);
        new PendingRestore { SnapshotDir = templates.DirectoryOf(template.Key), Source = "template", Tag = template.Key, Template = template.Key }.Write(store.Dir);
        return boot;
    }
}
