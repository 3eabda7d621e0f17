using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Vmm;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// The platform choices of one start (<see cref="StartOptions.Kernel"/>, <see cref="StartOptions.Arch"/>,
/// <see cref="StartOptions.Backend"/>, <see cref="StartOptions.SupervisorExecutable"/>; docs/ARCHITECTURE.md "Kernels and boot"),
/// checked before anything is recorded or spawned so that a bad one is a clear error, not a failed boot. The supervisor
/// checks the kernel and the backend again when it prepares the boot (<see cref="BootAssets.PrepareAsync"/>).
/// </summary>
internal static class BootChoices
{
    /// <summary>The field name of the supervisor executable in errors.</summary>
    public const string SupervisorField = "supervisor";

    /// <summary>Checks every choice; returns the supervisor executable to spawn (a full path), or null for the default one.</summary>
    public static async Task<string?> CheckAsync(StatePaths paths, StartOptions options, CancellationToken ct)
    {
        GuestPlatform.EnsureArch(options.Arch);
        var wanted = GuestPlatform.ParseBackend(options.Backend);
        string? supervisor = options.SupervisorExecutable is { } s ? Supervisor(s) : null;
        var kernels = new KernelStore(paths);
        InstalledKernel? kernel = options.Kernel is { } k ? await KernelOverride.ResolveAsync(kernels, k, ct).ConfigureAwait(false) : null;
        if (wanted == Accelerator.Kvm)
        {
            // The probe is cached per (QEMU, kernel, host kernel): this costs a boot only the first time.
            var qemu = QemuInstallation.Locate(paths.Cache);
            kernel ??= await kernels.EnsureDefaultAsync(options.Progress, ct).ConfigureAwait(false);
            GuestPlatform.Apply(await new AcceleratorProbe(paths).ChooseAsync(qemu, kernel.KernelPath, kernel.Sha256, ct).ConfigureAwait(false), wanted);
        }
        return supervisor;
    }

    /// <summary>An existing executable file, as a full path.</summary>
    internal static string Supervisor(string path)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new MicroagentException(ErrorKind.NotFound, $"supervisor executable {full} does not exist",
                "pass the microagent binary (bin/microagent), or omit it to use the default") { Field = SupervisorField };
        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        if ((File.GetUnixFileMode(full) & anyExecute) == 0)
            throw new MicroagentException(ErrorKind.Invalid, $"supervisor executable {full} is not executable",
                $"`chmod +x {full}`, or pass the microagent binary (bin/microagent)") { Field = SupervisorField };
        return full;
    }
}
