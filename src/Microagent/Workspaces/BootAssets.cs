using Microagent.Agent;
using Microagent.Kernels;
using Microagent.Vmm;

namespace Microagent.Workspaces;

/// <summary>
/// Everything a boot needs that does not depend on the workspace or its disk: QEMU, a verified kernel, its initramfs (with
/// the guest agent), the accelerator. The root disk is the caller's (a workspace overlay on its image baseline).
/// </summary>
internal sealed record BootAssets(QemuInstallation Qemu, InstalledKernel Kernel, string InitrdPath, AcceleratorChoice Accelerator)
{
    /// <summary>
    /// Locates or builds each asset; the kernel is verified against its recorded sha256 every time. A boot's overrides
    /// (docs/ARCHITECTURE.md "Kernels and boot"): <paramref name="kernelOverride"/> boots that image file instead of the
    /// default kernel (<see cref="KernelOverride"/>: it must be a copy of an installed kernel), and <paramref name="backend"/>
    /// (<see cref="GuestPlatform.ParseBackend"/>) asks for an accelerator over the probe's choice.
    /// </summary>
    public static async Task<BootAssets> PrepareAsync(StatePaths paths, IProgress<string>? progress, CancellationToken ct,
        string? kernelOverride = null, string? backend = null)
    {
        var wanted = GuestPlatform.ParseBackend(backend);
        var qemu = QemuInstallation.Locate(paths.Cache);
        var kernels = new KernelStore(paths);
        InstalledKernel kernel;
        if (kernelOverride is not null) kernel = await KernelOverride.ResolveAsync(kernels, kernelOverride, ct).ConfigureAwait(false);
        else
        {
            kernel = await kernels.EnsureDefaultAsync(progress, ct).ConfigureAwait(false);
            await kernels.VerifyAsync(kernel, ct).ConfigureAwait(false);
        }
        string agent = AgentLocator.Find();
        var initrdTask = new InitramfsBuilder(paths).EnsureAsync(kernel, agent, ct);
        var accelTask = new AcceleratorProbe(paths).ChooseAsync(qemu, kernel.KernelPath, kernel.Sha256, ct);
        string initrd = await initrdTask.ConfigureAwait(false);
        var accel = GuestPlatform.Apply(await accelTask.ConfigureAwait(false), wanted);
        return new BootAssets(qemu, kernel, initrd, accel);
    }
}
