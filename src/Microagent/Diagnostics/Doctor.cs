using System.Diagnostics;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Vmm;

namespace Microagent.Diagnostics;

/// <summary>Outcome of one doctor check.</summary>
public enum CheckStatus
{
    /// <summary>Works.</summary>
    Ok,
    /// <summary>Works, with a caveat.</summary>
    Warn,
    /// <summary>Broken: runs will fail until fixed.</summary>
    Fail,
}

/// <summary>One line of the doctor report.</summary>
/// <param name="Name">What was checked.</param>
/// <param name="Status">ok, warn or fail.</param>
/// <param name="Detail">What was found.</param>
/// <param name="Remediation">How to fix it, when not ok.</param>
public sealed record DoctorCheck(string Name, CheckStatus Status, string Detail, string? Remediation = null);

/// <summary>The whole doctor report.</summary>
/// <param name="Checks">Every check, in order.</param>
/// <param name="Accelerator">The accelerator runs will use, when it could be decided.</param>
/// <param name="StateDir">The state directory examined.</param>
/// <param name="StateDirFreeBytes">Bytes free on the filesystem holding the state directory; null when it cannot be read.</param>
public sealed record DoctorReport(IReadOnlyList<DoctorCheck> Checks, AcceleratorChoice? Accelerator, string StateDir, long? StateDirFreeBytes = null)
{
    /// <summary>True when no check failed.</summary>
    public bool Healthy => Checks.All(c => c.Status != CheckStatus.Fail);
}

/// <summary>Examines this host: QEMU, accelerator (with a real probe), kernel, agent, image tools, state dir.</summary>
public sealed class Doctor(StatePaths paths)
{
    private const string Install = "run scripts/install.sh (or `make demo`)";

    /// <summary>Runs every check. Never throws for a broken host: failures become checks.</summary>
    public async Task<DoctorReport> RunAsync(CancellationToken ct = default)
    {
        var checks = new List<DoctorCheck>();
        QemuInstallation? qemu = null;
        try
        {
            qemu = QemuInstallation.Locate();
            checks.Add(new("qemu", CheckStatus.Ok, $"QEMU {qemu.Version} at {qemu.SystemBinary}; qemu-img at {qemu.ImgBinary}"));
            checks.Add(qemu.QbootRom is null
                ? new("qboot", CheckStatus.Warn, "qboot.rom not found: TCG boots use SeaBIOS (slower)", Install)
                : new("qboot", CheckStatus.Ok, qemu.QbootRom));
        }
        catch (MicroagentException e) { checks.Add(new("qemu", CheckStatus.Fail, e.Message, e.Remediation)); }

        checks.Add(ToolCheck("e2fsprogs", "mke2fs", "-V"));
        checks.Add(ToolCheck("kmod", "depmod", "--version"));

        var host = HostKvm.Detect();
        string kvmFacts = $"/dev/kvm {(host.DevicePresent ? host.DeviceAccessible ? "present and accessible" : "present, not accessible" : "absent")}; " +
                          $"kvm_pvm module {(host.PvmOnly ? "loaded (PVM-only nested KVM)" : "not loaded")}; " +
                          $"CPU VMX/SVM {(host.CpuVirtualization ? "yes" : "no")}";
        checks.Add(new("kvm-host", host.PvmOnly ? CheckStatus.Warn : CheckStatus.Ok,
            host.PvmOnly ? kvmFacts + ". This machine's KVM is PVM-only: stock guest kernels (like Debian's cloud kernel) cannot use it, so VMs run under TCG." : kvmFacts));

        InstalledKernel? kernel = null;
        var store = new KernelStore(paths);
        try
        {
            kernel = store.GetDefault();
            if (kernel is null)
            {
                string? deb = KernelStore.FindDefaultDeb();
                checks.Add(deb is null
                    ? new("kernel", CheckStatus.Fail, "no kernel installed and no default kernel package found", Install)
                    : new("kernel", CheckStatus.Warn, $"no kernel installed yet; the first run installs {Path.GetFileName(deb)}", "or run `microagent kernel install` now"));
            }
            else
            {
                await store.VerifyAsync(kernel, ct).ConfigureAwait(false);
                checks.Add(new("kernel", CheckStatus.Ok, $"{kernel.Version} sha256 {kernel.Sha256[..16]}… verified"));
            }
        }
        catch (MicroagentException e) { checks.Add(new("kernel", CheckStatus.Fail, e.Message, e.Remediation)); kernel = null; }

        checks.Add(NetworkCheck.Check(kernel));

        try { checks.Add(new("agent", CheckStatus.Ok, AgentLocator.Find())); }
        catch (MicroagentException e) { checks.Add(new("agent", CheckStatus.Fail, e.Message, e.Remediation)); }

        string? layout = ImageStore.FindDefaultImageLayout();
        checks.Add(layout is null
            ? new("default-image", CheckStatus.Fail, "the embedded default image (OCI layout) was not found", "run `make build`")
            : new("default-image", CheckStatus.Ok, layout));

        AcceleratorChoice? accel = null;
        if (qemu is not null && kernel is not null)
        {
            try
            {
                accel = await new AcceleratorProbe(paths).ChooseAsync(qemu, kernel.KernelPath, kernel.Sha256, ct).ConfigureAwait(false);
                checks.Add(new("accelerator", CheckStatus.Ok, $"{accel.Accelerator.ToString().ToLowerInvariant()} ({accel.MachineType}): {accel.Reason}"));
            }
            catch (MicroagentException e) { checks.Add(new("accelerator", CheckStatus.Fail, e.Message, e.Remediation)); }
        }
        else
        {
            checks.Add(new("accelerator", CheckStatus.Warn, "not probed: needs QEMU and an installed kernel", "run `microagent kernel install`"));
        }

        checks.Add(StateDirCheck());
        long? free = Workspaces.HostSpace.FreeBytes(paths.Root);
        checks.Add(FreeSpaceCheck(free));
        return new DoctorReport(checks, accel, paths.Root, free);
    }

    /// <summary>Below this, a workspace that writes can fill the host disk soon (QEMU then pauses it).</summary>
    public const long LowFreeBytes = 1L << 30;

    private DoctorCheck FreeSpaceCheck(long? free) => free switch
    {
        null => new("state-dir-space", CheckStatus.Warn, $"cannot read the free space of {paths.Root}"),
        < LowFreeBytes => new("state-dir-space", CheckStatus.Warn, $"{Tools.ByteSize.Format(free.Value)} free on the filesystem of {paths.Root}",
            "free space there: a workspace whose disk grows past it is paused (host disk full) until space is freed"),
        _ => new("state-dir-space", CheckStatus.Ok, $"{Tools.ByteSize.Format(free.Value)} free on the filesystem of {paths.Root}"),
    };

    private DoctorCheck StateDirCheck()
    {
        try
        {
            StatePaths.EnsureDirectory(paths.Root);
            var mode = File.GetUnixFileMode(paths.Root);
            return (mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0
                ? new("state-dir", CheckStatus.Warn, $"{paths.Root} is accessible to other users ({mode})", $"chmod 700 {paths.Root}")
                : new("state-dir", CheckStatus.Ok, $"{paths.Root} (0700)");
        }
        catch (MicroagentException e) { return new("state-dir", CheckStatus.Fail, e.Message, e.Remediation); }
    }

    private static DoctorCheck ToolCheck(string name, string tool, string versionArg)
    {
        string? path = QemuInstallation.FindOnPath(tool) ?? new[] { "/usr/sbin/" + tool, "/sbin/" + tool }.FirstOrDefault(File.Exists);
        if (path is null) return new(name, CheckStatus.Fail, $"{tool} not found", Install);
        try
        {
            var psi = new ProcessStartInfo(path, versionArg) { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            string text = (p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd()).Trim();
            p.WaitForExit();
            return new(name, CheckStatus.Ok, $"{path}: {text.Split('\n')[0].Trim()}");
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
        {
            return new(name, CheckStatus.Fail, $"{path}: {e.Message}", Install);
        }
    }
}
