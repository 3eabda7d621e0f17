using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microagent.Vmm;

/// <summary>
/// Chooses the accelerator from a real boot, never from the mere existence of /dev/kvm
/// (docs/ARCHITECTURE.md "Kernels and boot": /dev/kvm may be PVM-only nested KVM on which a stock kernel dies).
/// The probe boots the kernel with KVM and no root disk: a kernel that reaches
/// "VFS: Unable to mount root fs" ran its whole init under KVM. The outcome is cached per
/// (QEMU version, kernel hash, host kernel release); <c>MICROAGENT_ACCEL=tcg|kvm</c> overrides it.
/// </summary>
internal sealed class AcceleratorProbe(StatePaths paths)
{
    /// <summary>Environment variable forcing the accelerator (<c>tcg</c> or <c>kvm</c>).</summary>
    public const string OverrideVariable = "MICROAGENT_ACCEL";

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(20);
    private const string BootedMarker = "Kernel panic - not syncing: VFS";

    /// <summary>Returns the cached or freshly probed choice for booting <paramref name="kernelPath"/>.</summary>
    public async Task<AcceleratorChoice> ChooseAsync(QemuInstallation qemu, string kernelPath, string kernelSha256, CancellationToken ct = default)
    {
        string? forced = Environment.GetEnvironmentVariable(OverrideVariable)?.Trim().ToLowerInvariant();
        if (forced == "tcg")
            return new AcceleratorChoice(Accelerator.Tcg, $"{OverrideVariable}=tcg forces software emulation", false, "not-probed");

        var host = HostKvm.Detect();
        if (forced == "kvm")
            return new AcceleratorChoice(Accelerator.Kvm, $"{OverrideVariable}=kvm forces KVM without a probe", false, "not-probed");

        if (host.Unusable() is { } why)
            return new AcceleratorChoice(Accelerator.Tcg, $"TCG: {why}", true, host.DevicePresent ? "no-access" : "absent");

        string key = CacheKey(qemu, kernelSha256);
        string cachePath = Path.Combine(paths.Cache, "accelerator.json");
        if (ReadCache(cachePath) is { } cached && cached.Key == key)
            return cached.Choice with { Reason = cached.Choice.Reason + " (cached probe)" };

        var (works, detail) = await ProbeKvmAsync(qemu, kernelPath, ct).ConfigureAwait(false);
        AcceleratorChoice choice;
        if (works)
            choice = new AcceleratorChoice(Accelerator.Kvm, "KVM: a probe boot of the kernel succeeded under KVM", true, "works");
        else if (host.PvmOnly)
            choice = new AcceleratorChoice(Accelerator.Tcg,
                "TCG: /dev/kvm is PVM-only nested KVM (kvm_pvm module, no VMX/SVM in the CPU flags); a stock guest kernel " +
                $"cannot run on it (probe boot failed: {detail})", true, "pvm-only");
        else
            choice = new AcceleratorChoice(Accelerator.Tcg, $"TCG: a probe boot under KVM failed ({detail})", true, "boot-failed");

        StatePaths.EnsureDirectory(paths.Root);
        StatePaths.EnsureDirectory(paths.Cache);
        StatePaths.WriteAtomic(cachePath, JsonSerializer.SerializeToUtf8Bytes(new CacheEntry(key, choice), VmmJson.Default.CacheEntry));
        return choice;
    }

    private static string CacheKey(QemuInstallation qemu, string kernelSha256)
    {
        string hostRelease = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "?";
        return $"qemu={qemu.Version};kernel={kernelSha256};host={hostRelease}";
    }

    private static CacheEntry? ReadCache(string path)
    {
        try { return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), VmmJson.Default.CacheEntry) : null; }
        catch (JsonException) { return null; }
    }

    /// <summary>Boots the kernel under KVM with no root disk; true when it ran its whole init.</summary>
    internal static async Task<(bool Works, string Detail)> ProbeKvmAsync(QemuInstallation qemu, string kernelPath, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(qemu.SystemBinary)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (string arg in new[]
        {
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-accel", "kvm", "-cpu", "host",
            "-M", "microvm,isa-serial=on", "-m", "128M", "-serial", "stdio",
            "-kernel", kernelPath, "-append", "console=ttyS0 loglevel=1 panic=-1",
        }) psi.ArgumentList.Add(arg);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ProbeTimeout);
        try { await p.WaitForExitAsync(timeout.Token).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            return (false, $"no boot within {ProbeTimeout.TotalSeconds:0} s");
        }
        string output = await stdout.ConfigureAwait(false);
        string errors = (await stderr.ConfigureAwait(false)).Trim();
        if (output.Contains(BootedMarker, StringComparison.Ordinal)) return (true, "booted");
        string firstError = errors.Split('\n').FirstOrDefault(l => l.Length > 0) ?? $"QEMU exited with {p.ExitCode}";
        if (output.Contains("emulation failure", StringComparison.Ordinal)) firstError = "KVM internal error: emulation failure";
        return (false, firstError.Replace("qemu-system-x86_64: ", "", StringComparison.Ordinal));
    }

    internal sealed record CacheEntry(string Key, AcceleratorChoice Choice);
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(AcceleratorProbe.CacheEntry))]
internal sealed partial class VmmJson : JsonSerializerContext;
