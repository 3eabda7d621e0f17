using Microagent.Errors;
using Microagent.Images;
using Microagent.Workspaces.Snapshots;
using Microagent.Workspaces.Templates;

namespace Microagent.Workspaces;

/// <summary>Warm-start templates (docs/ARCHITECTURE.md "Warm start"): list, make ahead of time, prune.</summary>
public sealed partial class WorkspaceManager
{
    /// <summary>
    /// Every stored template, oldest first, each with <see cref="TemplateInfo.Stale"/> saying why this host would not restore it
    /// (its kernel, agent or QEMU changed...) and the workspaces whose disks are overlays on its layer.
    /// </summary>
    public async Task<IReadOnlyList<TemplateInfo>> ListTemplatesAsync(CancellationToken ct = default)
    {
        var templates = new TemplateStore(Paths);
        if (!Directory.Exists(templates.Root)) return [];
        var assets = await BootAssets.PrepareAsync(Paths, null, ct).ConfigureAwait(false);
        string agent = await AgentBuild.CurrentAsync(ct).ConfigureAwait(false);
        return templates.List(m => TemplateTarget.For(m, assets, agent));
    }

    /// <summary>
    /// Makes the template a <see cref="RunAsync"/> of <paramref name="image"/> (null: the default image) with this memory and vCPUs
    /// restores, ahead of its first use: one cold throwaway boot that captures it once the agent is ready. A current template of
    /// that key is returned as it is.
    /// </summary>
    public async Task<TemplateInfo> TemplateCreateAsync(string? image = null, int memoryMiB = 256, int cpus = 1, IProgress<string>? progress = null,
        CancellationToken ct = default)
    {
        var run = await RunAsync(new RunOptions { Image = image, MemoryMiB = memoryMiB, Cpus = cpus, Command = ["true"], Progress = progress }, ct).ConfigureAwait(false);
        var baseline = await new ImageStore(Paths).EnsureBaselineAsync(image, progress, ct).ConfigureAwait(false);
        var shape = new TemplateManifest { Image = image, ImageDigest = baseline.ManifestDigest, SizeMiB = DiskSizeMiB(WorkspaceProfile.Tiny.DiskMiB, baseline.Path), MemoryMiB = memoryMiB, Cpus = cpus };
        var assets = await BootAssets.PrepareAsync(Paths, null, ct).ConfigureAwait(false);
        var target = TemplateTarget.For(shape, assets, await AgentBuild.CurrentAsync(ct).ConfigureAwait(false));
        var found = (await ListTemplatesAsync(ct).ConfigureAwait(false)).FirstOrDefault(t => t.Manifest.Key == target.Key && t.Stale is null);
        return found ?? throw MicroagentException.Transient(
            $"no template was captured for {image ?? "the default image"} ({memoryMiB} MiB, {cpus} vCPU): {run.ColdReason ?? "the boot did not capture one"}",
            "another boot may be capturing it now: try again; `microagent template list` shows what there is");
    }

    /// <summary>
    /// Removes the templates this host would no longer restore (kernel, agent or QEMU changed), or every one with
    /// <paramref name="all"/>, then the template disk layers nothing needs any more. A layer under a workspace's disk stays until
    /// that workspace is gone; a template being captured right now is kept.
    /// </summary>
    public async Task<TemplatePruneResult> PruneTemplatesAsync(bool all = false, CancellationToken ct = default)
    {
        var templates = new TemplateStore(Paths);
        var removed = new List<string>();
        var kept = new List<string>();
        long before = 0;
        foreach (var t in await ListTemplatesAsync(ct).ConfigureAwait(false))
        {
            long layer = File.Exists(templates.LayerPath(t.Manifest)) ? new FileInfo(templates.LayerPath(t.Manifest)).Length : 0;
            if ((all || t.Stale is not null) && templates.Delete(t.Manifest.Key)) { removed.Add(t.Manifest.Key); before += t.SizeBytes - layer; }
            else kept.Add(t.Manifest.Key);
        }
        long layers = templates.PruneLayers();
        return new TemplatePruneResult(removed, kept, before + layers);
    }

    /// <summary>A workspace disk's size: the requested MiB, at least the baseline's (the one rule for create and templates).</summary>
    internal static int DiskSizeMiB(int requestedMiB, string baselinePath) =>
        (int)Math.Max(requestedMiB, (new FileInfo(baselinePath).Length + (1 << 20) - 1) >> 20);
}
