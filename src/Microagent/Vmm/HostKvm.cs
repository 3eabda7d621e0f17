namespace Microagent.Vmm;

/// <summary>What the host says about KVM, before any boot is tried.</summary>
/// <param name="DevicePresent">/dev/kvm exists.</param>
/// <param name="DeviceAccessible">/dev/kvm can be opened read-write by this user.</param>
/// <param name="PvmOnly">KVM comes from the kvm_pvm module (nested, paravirtualized): stock guest kernels cannot run on it.</param>
/// <param name="CpuVirtualization">The CPU advertises VMX or SVM.</param>
internal sealed record HostKvm(bool DevicePresent, bool DeviceAccessible, bool PvmOnly, bool CpuVirtualization)
{
    /// <summary>Path of the KVM device.</summary>
    public const string DevicePath = "/dev/kvm";

    /// <summary>Reads /dev/kvm, /sys/module and /proc/cpuinfo.</summary>
    public static HostKvm Detect()
    {
        bool present = File.Exists(DevicePath);
        bool accessible = false;
        if (present)
        {
            try { using var _ = new FileStream(DevicePath, FileMode.Open, FileAccess.ReadWrite); accessible = true; }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException) { }
        }
        bool pvm = Directory.Exists("/sys/module/kvm_pvm");
        bool cpu = false;
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal)) continue;
                var flags = line.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries);
                cpu = flags.Contains("vmx") || flags.Contains("svm");
                break;
            }
        }
        catch (IOException) { }
        return new HostKvm(present, accessible, pvm, cpu);
    }

    /// <summary>A short explanation of why KVM cannot be used, or null when a boot probe should decide.</summary>
    public string? Unusable()
    {
        if (!DevicePresent) return "/dev/kvm is absent (no hardware virtualization exposed to this machine)";
        if (!DeviceAccessible) return "/dev/kvm exists but this user cannot open it (add the user to the kvm group)";
        return null;
    }
}
