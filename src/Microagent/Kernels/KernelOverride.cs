using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Kernels;

/// <summary>
/// A one-boot kernel image override (<c>start --kernel PATH</c>; docs/ARCHITECTURE.md "Kernels and boot"). The file is
/// hash-verified like an installed kernel: its sha256 must be the one an installed kernel recorded at install time, whose
/// modules then go into the initramfs (a module loads only into the build it was made for). A different build, or a damaged
/// copy, is refused before anything boots; it can be installed with <c>kernel install</c>. Checked by the start and again
/// by the supervisor just before the boot, so a file swapped in between is refused too.
/// </summary>
internal static class KernelOverride
{
    /// <summary>The field name in errors (<c>--kernel</c> on the CLI, <c>kernel</c> elsewhere).</summary>
    public const string Field = "kernel";

    /// <summary>The installed kernel that <paramref name="path"/> is a copy of, with its image path set to <paramref name="path"/>.</summary>
    public static async Task<InstalledKernel> ResolveAsync(KernelStore store, string path, CancellationToken ct)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new MicroagentException(ErrorKind.NotFound, $"kernel image {full} does not exist", "pass an existing vmlinuz file") { Field = Field };
        string? version;
        try { version = KernelStore.ReadBzImageVersion(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MicroagentException(ErrorKind.Invalid, $"cannot read kernel image {full}: {e.Message}", "pass a readable vmlinuz file") { Field = Field };
        }
        if (version is null)
            throw new MicroagentException(ErrorKind.Invalid, $"{full} is not a bzImage kernel image (no setup header with a version)",
                "pass an x86 vmlinuz (bzImage) file") { Field = Field };
        string sha = await Hashing.Sha256FileAsync(full, ct).ConfigureAwait(false);
        var installed = store.List();
        if (installed.FirstOrDefault(k => string.Equals(k.Sha256, sha, StringComparison.Ordinal)) is { } match)
            return match with { KernelPath = full };
        string remediation = $"to boot another build, install it with its modules first (`microagent kernel install {full}`), then start without the override or pass the installed image";
        if (installed.FirstOrDefault(k => k.Version == version) is { } same)
            throw new MicroagentException(ErrorKind.Invalid,
                $"kernel image {full} (version {version}) has sha256 {sha}, but installed kernel {version} recorded {same.Sha256}: it is a different build or a damaged copy",
                remediation) { Field = Field };
        throw new MicroagentException(ErrorKind.Invalid,
            $"kernel image {full} (version {version}, sha256 {sha}) is not an installed kernel: the initramfs needs the modules of its build", remediation) { Field = Field };
    }
}
