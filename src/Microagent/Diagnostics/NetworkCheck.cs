using Microagent.Kernels;

namespace Microagent.Diagnostics;

/// <summary>
/// What the <c>user</c> network needs (docs/ARCHITECTURE.md "Networking"): the guest captures outbound TCP and DNS with nf_tables,
/// so the installed kernel must provide these modules (built in, or as modules the initramfs can carry). <c>isolated</c> needs none.
/// </summary>
internal static class NetworkCheck
{
    /// <summary>Modules the guest's capture uses: nf_tables with its redirect and NAT expressions, conntrack (for the original destination) and the dummy interface.</summary>
    public static readonly IReadOnlyList<string> RequiredModules = ["nf_tables", "nft_redir", "nft_nat", "nf_conntrack", "dummy"];

    /// <summary>The doctor line for <paramref name="kernel"/> (null: no kernel installed yet).</summary>
    public static DoctorCheck Check(InstalledKernel? kernel)
    {
        if (kernel?.ModulesDir is not { } dir || !File.Exists(Path.Combine(dir, "modules.dep")))
            return new("network", CheckStatus.Warn, "not checked: no installed kernel with a modules.dep", "run `microagent kernel install`; the user network needs nf_tables, nft_redir, nft_nat, nf_conntrack and dummy");
        ModulesDep dep;
        try { dep = ModulesDep.Load(dir); }
        catch (Exception e) when (e is IOException or FormatException) { return new("network", CheckStatus.Warn, $"cannot read {dir}/modules.dep: {e.Message}"); }
        var missing = RequiredModules.Where(m => !dep.Provides(m)).ToList();
        return missing.Count == 0
            ? new("network", CheckStatus.Ok, $"kernel {kernel.Version} provides {string.Join(", ", RequiredModules)} (user network: egress through the host broker)")
            : new("network", CheckStatus.Warn, $"kernel {kernel.Version} lacks {string.Join(", ", missing)}: the user network cannot capture guest traffic",
                "install a kernel that has them (Debian's cloud kernel does), or use --network isolated");
    }
}
