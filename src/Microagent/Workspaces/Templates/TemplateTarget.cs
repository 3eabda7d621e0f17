using Microagent.Vmm;

namespace Microagent.Workspaces.Templates;

/// <summary>
/// The one place that says what a warm-start template for a boot must have been captured with (docs/ARCHITECTURE.md "Warm
/// start"): the manager asks it which template a first start may restore, the supervisor what a capture records.
/// </summary>
internal static class TemplateTarget
{
    /// <summary>The template manifest (key included) a boot of <paramref name="config"/> with this memory, vCPUs, assets and agent would restore or capture.</summary>
    public static TemplateManifest For(WorkspaceConfig config, int memoryMiB, int cpus, BootAssets assets, string agentBuild) =>
        For(new TemplateManifest { Image = config.Image, ImageDigest = config.ImageDigest, SizeMiB = config.SizeMiB, MemoryMiB = memoryMiB, Cpus = cpus },
            assets, agentBuild);

    /// <summary>
    /// <paramref name="workspace"/> (its image, disk size, memory and vCPUs) with what this host would boot it with now (kernel,
    /// initramfs, agent, QEMU, machine, CPU, kernel command line) and the key of the whole.
    /// </summary>
    public static TemplateManifest For(TemplateManifest workspace, BootAssets assets, string agentBuild) => (workspace with
    {
        KernelSha256 = assets.Kernel.Sha256, KernelRelease = assets.Kernel.Version, Initramfs = Path.GetFileName(assets.InitrdPath), AgentBuild = agentBuild,
        QemuVersion = assets.Qemu.Version.ToString(3), MachineType = QemuCommandLine.TcgMachineType, CpuModel = QemuCommandLine.TcgCpuModel,
        KernelArgs = QemuCommandLine.KernelArgs(TemplateStore.BootHostname, TemplateStore.BootKernelArgs),
    }).WithKey();

    /// <summary>
    /// Why a boot of <paramref name="config"/> cannot be served by a template (it boots cold), or null when it can: templates need
    /// the <c>pc</c> machine (TCG, whose vsock device hot-plugs) and a VM whose devices are exactly the template's (no data disks).
    /// </summary>
    public static string? Unservable(WorkspaceConfig config, BootAssets assets)
    {
        if (assets.Accelerator.Accelerator == Accelerator.Kvm) return "KVM boots the microvm machine, whose vsock device cannot be hot-plugged, so it has no templates";
        if (config.Disks.Count > 0) return $"the workspace has data disks ({string.Join(", ", config.Disks.Select(d => d.Target))}), which a template's saved devices do not have";
        return null;
    }
}
