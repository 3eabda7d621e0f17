using System.Diagnostics;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Vmm;
using Microagent.Workspaces;

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
    /// <summary>What the remediation of a missing host package says (the same text at first use and in <c>doctor</c>).</summary>
    internal const string Install = "install qemu-system-x86 and qemu-utils (QEMU 10 or newer: on Debian 12 from bookworm-backports), e2fsprogs and kmod "
        + "with apt-get, or run scripts/install.sh in a microagent checkout";

    /// <summary>
    /// The checks of what the host must provide that need no VM: QEMU (version read once and cached), e2fsprogs, kmod and a
    /// kernel (installed, or a default kernel package the first start installs). A <see cref="WorkspaceManager"/> runs these
    /// at its first create, start or run and fails with their remediation; <see cref="RunAsync"/> runs them and more.
    /// Never throws for a broken host: failures become checks.
    /// </summary>
    public Task<DoctorReport> CheckPrerequisitesAsync(CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        var checks = new List<DoctorCheck>();
        QemuChecks(checks, paths.Cache);
        checks.Add(ToolCheck("e2fsprogs", "mke2fs", versionArg: null));
        checks.Add(ToolCheck("kmod", "depmod", versionArg: null));
        try
        {
            if (KernelCheck(checks, new KernelStore(paths)) is { } kernel)
                checks.Add(new("kernel", CheckStatus.Ok, $"{kernel.Version} installed"));
        }
        catch (MicroagentException e) { checks.Add(new("kernel", CheckStatus.Fail, e.Message, e.Remediation)); }
        return Task.FromResult(new DoctorReport(checks, null, paths.Root, null));
    }

    /// <summary>Runs every check. Never throws for a broken host: failures become checks.</summary>
    public async Task<DoctorReport> RunAsync(CancellationToken ct = default)
    {
        var checks = new List<DoctorCheck>();
        QemuInstallation? qemu = QemuChecks(checks, cacheDir: null);

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
            kernel = KernelCheck(checks, store);
            if (kernel is not null)
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
            ? new("default-image", CheckStatus.Fail, "the embedded default image (OCI layout) was not found", "reference the Microagent package (it carries the image), or run `make build` in a checkout")
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

    /// <summary>Adds the qemu and qboot checks; returns the installation when QEMU is usable.</summary>
    private static QemuInstallation? QemuChecks(List<DoctorCheck> checks, string? cacheDir)
    {
        try
        {
            var qemu = QemuInstallation.Locate(cacheDir);
            checks.Add(new("qemu", CheckStatus.Ok, $"QEMU {qemu.Version} at {qemu.SystemBinary}; qemu-img at {qemu.ImgBinary}"));
            checks.Add(qemu.QbootRom is null
                ? new("qboot", CheckStatus.Warn, "qboot.rom not found: TCG boots use SeaBIOS (slower)", Install)
                : new("qboot", CheckStatus.Ok, qemu.QbootRom));
            return qemu;
        }
        catch (MicroagentException e) { checks.Add(new("qemu", CheckStatus.Fail, e.Message, e.Remediation)); return null; }
    }

    /// <summary>The default kernel, or null after adding a check that says none is installed (warn: the first start installs the default package; fail: there is none).</summary>
    private static InstalledKernel? KernelCheck(List<DoctorCheck> checks, KernelStore store)
    {
        var kernel = store.GetDefault();
        if (kernel is not null) return kernel;
        string? deb = KernelStore.FindDefaultDeb();
        checks.Add(deb is null
            ? new("kernel", CheckStatus.Fail, "no kernel installed and no default kernel package found",
                "run scripts/install.sh in a microagent checkout (it downloads the Debian cloud kernel package), or `microagent kernel install PATH` (KernelStore.InstallAsync) with a linux-image-*.deb or vmlinuz")
            : new("kernel", CheckStatus.Warn, $"no kernel installed yet; the first run installs {Path.GetFileName(deb)}", "or run `microagent kernel install` now"));
        return null;
    }

    private static DoctorCheck ToolCheck(string name, string tool, string? versionArg)
    {
        string? path = QemuInstallation.FindOnPath(tool) ?? new[] { "/usr/sbin/" + tool, "/sbin/" + tool }.FirstOrDefault(File.Exists);
        if (path is null) return new(name, CheckStatus.Fail, $"{tool} not found", Install);
        if (versionArg is null) return new(name, CheckStatus.Ok, path);
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
