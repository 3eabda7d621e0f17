using Microagent.Errors;

namespace Microagent.Vmm;

/// <summary>
/// The guest architecture and the VM backend a start may ask for (<c>start --arch/--backend</c>; docs/ARCHITECTURE.md
/// "Kernels and boot"). Every name is checked here and only here: the CLI, MCP and the library pass what they were given.
/// </summary>
internal static class GuestPlatform
{
    /// <summary>The backend names: QEMU with KVM, QEMU with TCG (software emulation).</summary>
    public const string QemuKvm = "qemu-kvm", QemuTcg = "qemu-tcg";

    /// <summary>Field names in errors.</summary>
    public const string ArchField = "arch", BackendField = "backend";

    /// <summary>Accepts the one architecture microagent boots (x86_64, also spelt amd64); anything else is <c>unsupported</c>.</summary>
    public static void EnsureArch(string? arch)
    {
        if (arch is null) return;
        if (arch.Trim().ToLowerInvariant() is "x86_64" or "amd64" or "x86-64") return;
        throw new MicroagentException(ErrorKind.Unsupported,
            $"guest architecture '{arch}' is not supported: microagent boots x86_64 (amd64) guests with qemu-system-x86_64",
            "omit the architecture, or give x86_64 (amd64)") { Field = ArchField };
    }

    /// <summary>The accelerator a backend name asks for; null for none; an unknown name is <c>invalid</c>.</summary>
    public static Accelerator? ParseBackend(string? backend) => backend?.Trim().ToLowerInvariant() switch
    {
        null => null,
        QemuKvm or "kvm" => Accelerator.Kvm,
        QemuTcg or "tcg" => Accelerator.Tcg,
        _ => throw new MicroagentException(ErrorKind.Invalid, $"unknown backend '{backend}'", $"use {QemuKvm} or {QemuTcg}") { Field = BackendField },
    };

    /// <summary>The probe's choice (<paramref name="probed"/>) under the backend asked for: KVM where the probe found it unusable is <c>unsupported</c>.</summary>
    public static AcceleratorChoice Apply(AcceleratorChoice probed, Accelerator? wanted)
    {
        if (wanted is null || wanted == probed.Accelerator) return wanted is null ? probed : probed with { Reason = $"backend {Name(probed.Accelerator)} asked for; {probed.Reason}" };
        if (wanted == Accelerator.Tcg)
            return new AcceleratorChoice(Accelerator.Tcg, $"backend {QemuTcg} asked for: software emulation", probed.Probed, probed.KvmStatus);
        throw new MicroagentException(ErrorKind.Unsupported,
            $"backend {QemuKvm} asked for, but KVM cannot run guests on this host (probe: {probed.KvmStatus}): {probed.Reason}",
            $"omit the backend (microagent picks what works) or use {QemuTcg}; `microagent doctor` shows the probe; " +
            $"{AcceleratorProbe.OverrideVariable}=kvm skips the probe if you know better") { Field = BackendField };
    }

    /// <summary>The backend name of an accelerator.</summary>
    public static string Name(Accelerator a) => a == Accelerator.Kvm ? QemuKvm : QemuTcg;
}
