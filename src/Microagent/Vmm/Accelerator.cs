namespace Microagent.Vmm;

/// <summary>How QEMU executes guest code.</summary>
public enum Accelerator
{
    /// <summary>Software emulation (works everywhere).</summary>
    Tcg,
    /// <summary>Hardware virtualization through /dev/kvm.</summary>
    Kvm,
}

/// <summary>The accelerator a VM will use, and why it was chosen.</summary>
/// <param name="Accelerator">The chosen accelerator.</param>
/// <param name="Reason">One sentence a user can act on.</param>
/// <param name="Probed">True when a real boot decided it (now or a cached earlier boot).</param>
/// <param name="KvmStatus">What the KVM probe found: <c>absent</c>, <c>no-access</c>, <c>pvm-only</c>, <c>boot-failed</c>, <c>works</c>, or <c>not-probed</c>.</param>
public sealed record AcceleratorChoice(Accelerator Accelerator, string Reason, bool Probed, string KvmStatus)
{
    /// <summary>QEMU machine type for this accelerator (docs/ARCHITECTURE.md "Kernels and boot": microvm with KVM, pc + qboot with TCG).</summary>
    public string MachineType => Accelerator == Accelerator.Kvm ? "microvm" : "pc";
}
