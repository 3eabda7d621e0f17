using Microagent.Errors;
using Microagent.Vmm;

namespace Microagent.Tests.Vmm;

/// <summary>The names <c>--arch</c> and <c>--backend</c> accept, and KVM asked for where the probe found it unusable.</summary>
public sealed class GuestPlatformTests
{
    private static readonly AcceleratorChoice PvmOnly = new(Accelerator.Tcg, "TCG: /dev/kvm is PVM-only nested KVM", true, "pvm-only");
    private static readonly AcceleratorChoice KvmWorks = new(Accelerator.Kvm, "KVM: a probe boot succeeded", true, "works");

    [Theory]
    [InlineData(null)]
    [InlineData("x86_64")]
    [InlineData("amd64")]
    [InlineData("AMD64")]
    public void X86_64_under_its_names_is_accepted(string? arch) => GuestPlatform.EnsureArch(arch);

    [Theory]
    [InlineData("arm64")]
    [InlineData("aarch64")]
    [InlineData("riscv64")]
    [InlineData("")]
    public void Any_other_architecture_is_unsupported(string arch)
    {
        var e = Assert.Throws<MicroagentException>(() => GuestPlatform.EnsureArch(arch));
        Assert.Equal(ErrorKind.Unsupported, e.Kind);
        Assert.Equal("arch", e.Field);
        Assert.Contains($"'{arch}'", e.Message);
        Assert.Contains("x86_64", e.Remediation);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("qemu-kvm", Accelerator.Kvm)]
    [InlineData("qemu-tcg", Accelerator.Tcg)]
    [InlineData("QEMU-TCG", Accelerator.Tcg)]
    public void Backend_names_parse(string? name, Accelerator? expected) => Assert.Equal(expected, GuestPlatform.ParseBackend(name));

    [Fact]
    public void An_unknown_backend_is_invalid_and_names_both_choices()
    {
        var e = Assert.Throws<MicroagentException>(() => GuestPlatform.ParseBackend("firecracker"));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("backend", e.Field);
        Assert.Contains("qemu-kvm", e.Remediation);
        Assert.Contains("qemu-tcg", e.Remediation);
    }

    [Fact]
    public void Kvm_where_the_probe_failed_is_unsupported_with_the_probe_reason_and_a_remediation()
    {
        var e = Assert.Throws<MicroagentException>(() => GuestPlatform.Apply(PvmOnly, Accelerator.Kvm));
        Assert.Equal(ErrorKind.Unsupported, e.Kind);
        Assert.Equal("backend", e.Field);
        Assert.Contains("pvm-only", e.Message);
        Assert.Contains("PVM-only", e.Message);
        Assert.Contains("qemu-tcg", e.Remediation);
        Assert.Contains("doctor", e.Remediation);
    }

    [Fact]
    public void Tcg_is_always_possible_and_the_probe_choice_stands_without_a_backend()
    {
        Assert.Equal(Accelerator.Tcg, GuestPlatform.Apply(KvmWorks, Accelerator.Tcg).Accelerator);
        Assert.Equal(Accelerator.Tcg, GuestPlatform.Apply(PvmOnly, Accelerator.Tcg).Accelerator);
        Assert.Same(PvmOnly, GuestPlatform.Apply(PvmOnly, null));
        Assert.Equal(Accelerator.Kvm, GuestPlatform.Apply(KvmWorks, Accelerator.Kvm).Accelerator);
    }
}
