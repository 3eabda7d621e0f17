using Microagent.Agent;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Vmm;

namespace Microagent.Workspaces;

/// <summary>Everything a boot needs that does not depend on the workspace: QEMU, a verified kernel, its initramfs, the image baseline, the accelerator.</summary>
public sealed record BootAssets(QemuInstallation Qemu, InstalledKernel Kernel, string InitrdPath, Baseline Baseline, AcceleratorChoice Accelerator)
{
    /// <summary>Locates or builds each asset; the kernel is verified against its recorded sha256 every time.</summary>
    public static Task<BootAssets> PrepareAsync(StatePaths paths, string? image, IProgress<string>? progress, CancellationToken ct) =>
        PrepareAsync(paths, () => new ImageStore(paths).EnsureBaselineAsync(image, progress, ct), progress, ct);

    /// <summary>Like <see cref="PrepareAsync"/> for a disk whose baseline is already known (a workspace's).</summary>
    public static Task<BootAssets> PrepareForBaselineAsync(StatePaths paths, Baseline baseline, IProgress<string>? progress, CancellationToken ct) =>
        PrepareAsync(paths, () => Task.FromResult(baseline), progress, ct);

    private static async Task<BootAssets> PrepareAsync(StatePaths paths, Func<Task<Baseline>> baselineSource, IProgress<string>? progress, CancellationToken ct)
    {
        var qemu = QemuInstallation.Locate(paths.Cache);
        var kernels = new KernelStore(paths);
        var kernel = await kernels.EnsureDefaultAsync(progress, ct).ConfigureAwait(false);
        await kernels.VerifyAsync(kernel, ct).ConfigureAwait(false);
        string agent = AgentLocator.Find();
        var initrdTask = new InitramfsBuilder(paths).EnsureAsync(kernel, agent, ct);
        var baselineTask = baselineSource();
        var accelTask = new AcceleratorProbe(paths).ChooseAsync(qemu, kernel.KernelPath, kernel.Sha256, ct);
        string initrd = await initrdTask.ConfigureAwait(false);
        var baseline = await baselineTask.ConfigureAwait(false);
        var accel = await accelTask.ConfigureAwait(false);
        return new BootAssets(qemu, kernel, initrd, baseline, accel);
    }
}
