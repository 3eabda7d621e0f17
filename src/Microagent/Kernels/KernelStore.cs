using System.Text;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Kernels;

/// <summary>
/// Installed kernels (docs/ARCHITECTURE.md "Kernels and boot"). Layout: <c>kernels/&lt;version&gt;/vmlinuz</c>,
/// <c>kernels/&lt;version&gt;/modules/</c> (the tree of <c>/lib/modules/&lt;version&gt;</c>, with
/// <c>modules.dep</c>), <c>kernels/&lt;version&gt;/kernel.json</c> (written last: its presence
/// means the install is complete), and an optional <c>kernels/default</c> holding one version.
/// </summary>
public sealed class KernelStore
{
    /// <summary>Environment variable naming the default kernel package.</summary>
    public const string DefaultDebVariable = "MICROAGENT_KERNEL_DEB";
    /// <summary>Where scripts/install.sh downloads the default kernel package.</summary>
    public const string DefaultDebCacheDir = "/var/cache/microagent/kernel";

    private const string MetadataFile = "kernel.json";
    private const string Reinstall = "reinstall with `microagent kernel install`";
    private readonly StatePaths _paths;

    /// <summary>Uses the kernels directory of <paramref name="paths"/>.</summary>
    public KernelStore(StatePaths paths) => _paths = paths;

    /// <summary>
    /// Installs from a Debian linux-image .deb or a kernel image (vmlinuz) path; null means the
    /// default kernel package (<see cref="FindDefaultDeb"/>). For <c>ROOT/boot/vmlinuz-V</c> the
    /// modules are taken from <c>ROOT/lib/modules/V</c> when present (use
    /// <see cref="InstallImageAsync"/> to name them). Reinstalling a version replaces it.
    /// </summary>
    public Task<InstalledKernel> InstallAsync(string? source, CancellationToken ct = default, IProgress<string>? progress = null)
    {
        source ??= FindDefaultDeb() ?? throw NoDefaultDeb();
        if (!File.Exists(source))
            throw MicroagentException.NotFound($"kernel source {source} does not exist",
                "pass a Debian linux-image-*.deb or a vmlinuz file to `microagent kernel install`");
        return IsDeb(source)
            ? InstallDebAsync(source, progress, ct)
            : InstallImageAsync(source, SiblingModulesDir(source), version: null, ct, progress);
    }

    /// <summary>
    /// Installs a kernel image file with an optional modules directory (a <c>/lib/modules/&lt;version&gt;</c>
    /// tree). The version is <paramref name="version"/>, else read from the bzImage header, else the
    /// modules directory's name, else the file name <c>vmlinuz-&lt;version&gt;</c>.
    /// </summary>
    public async Task<InstalledKernel> InstallImageAsync(string kernelImagePath, string? modulesDir, string? version = null,
        CancellationToken ct = default, IProgress<string>? progress = null)
    {
        if (!File.Exists(kernelImagePath))
            throw MicroagentException.NotFound($"kernel image {kernelImagePath} does not exist", "pass an existing vmlinuz file");
        if (modulesDir is not null && !Directory.Exists(modulesDir))
            throw MicroagentException.NotFound($"modules directory {modulesDir} does not exist", "pass a /lib/modules/<version> directory, or none");
        version ??= ReadBzImageVersion(kernelImagePath)
            ?? (modulesDir is not null ? Path.GetFileName(Path.TrimEndingDirectorySeparator(modulesDir)) : null)
            ?? (Path.GetFileName(kernelImagePath).StartsWith("vmlinuz-", StringComparison.Ordinal) ? Path.GetFileName(kernelImagePath)["vmlinuz-".Length..] : null)
            ?? throw MicroagentException.Invalid($"cannot tell the kernel version of {kernelImagePath}: not a bzImage and not named vmlinuz-<version>",
                "name the file vmlinuz-<version> or pass the version explicitly");
        CheckVersion(version);

        string work = NewWorkDir();
        try
        {
            string stage = Path.Combine(work, "stage");
            Directory.CreateDirectory(stage);
            File.Copy(kernelImagePath, Path.Combine(stage, "vmlinuz"));
            if (modulesDir is not null)
            {
                progress?.Report($"copying modules from {modulesDir}");
                CopyTree(modulesDir, Path.Combine(stage, "modules"));
            }
            return await CommitAsync(stage, version, Path.GetFullPath(kernelImagePath), progress, ct).ConfigureAwait(false);
        }
        finally
        {
            TryDeleteDirectory(work);
        }
    }

    /// <summary>Installed kernels, newest version first.</summary>
    public IReadOnlyList<InstalledKernel> List()
    {
        if (!Directory.Exists(_paths.Kernels)) return [];
        var result = new List<InstalledKernel>();
        foreach (string dir in Directory.GetDirectories(_paths.Kernels))
        {
            if (Path.GetFileName(dir).StartsWith('.')) continue;
            if (TryLoad(dir) is { } k) result.Add(k);
        }
        result.Sort((a, b) =>
        {
            int c = CompareVersions(b.Version, a.Version);
            return c != 0 ? c : b.InstalledAt.CompareTo(a.InstalledAt);
        });
        return result;
    }

    /// <summary>The kernel marked default (<see cref="SetDefault"/>), else the newest installed, else null.</summary>
    public InstalledKernel? GetDefault()
    {
        var all = List();
        string marker = Path.Combine(_paths.Kernels, "default");
        if (File.Exists(marker))
        {
            string v = File.ReadAllText(marker).Trim();
            if (all.FirstOrDefault(k => k.Version == v) is { } marked) return marked;
        }
        return all.Count > 0 ? all[0] : null;
    }

    /// <summary>Marks an installed version as the default.</summary>
    public void SetDefault(string version)
    {
        if (List().All(k => k.Version != version))
            throw MicroagentException.NotFound($"kernel {version} is not installed", "see `microagent kernel list`");
        StatePaths.WriteAtomic(Path.Combine(_paths.Kernels, "default"), version + "\n");
    }

    /// <summary>The default kernel, installing it from the default package when none is installed.</summary>
    public async Task<InstalledKernel> EnsureDefaultAsync(IProgress<string>? progress = null, CancellationToken ct = default)
    {
        if (GetDefault() is { } k) return k;
        using (await FileLock.AcquireAsync(Path.Combine(_paths.Kernels, ".install.lock"), ct).ConfigureAwait(false))
        {
            if (GetDefault() is { } again) return again;
            string deb = FindDefaultDeb() ?? throw NoDefaultDeb();
            progress?.Report($"installing the default kernel from {deb}");
            return await InstallDebAsync(deb, progress, ct, locked: true).ConfigureAwait(false);
        }
    }

    /// <summary>Recomputes the kernel image's sha256 and fails if it differs from the recorded one.</summary>
    public async Task VerifyAsync(InstalledKernel kernel, CancellationToken ct = default)
    {
        if (!File.Exists(kernel.KernelPath))
            throw MicroagentException.NotFound($"kernel {kernel.Version} image {kernel.KernelPath} is missing", Reinstall);
        string now = await Hashing.Sha256FileAsync(kernel.KernelPath, ct).ConfigureAwait(false);
        if (!string.Equals(now, kernel.Sha256, StringComparison.Ordinal))
            throw MicroagentException.Permanent(
                $"kernel {kernel.Version} image {kernel.KernelPath} sha256 changed: recorded {kernel.Sha256}, now {now}", Reinstall);
    }

    /// <summary>
    /// The default kernel package: <c>$MICROAGENT_KERNEL_DEB</c>, else the newest
    /// <c>/var/cache/microagent/kernel/linux-image-*-cloud-amd64_*.deb</c>, else a .deb in
    /// <c>&lt;app&gt;/../share/microagent/kernel/</c>; null if none exists.
    /// </summary>
    public static string? FindDefaultDeb()
    {
        if (Environment.GetEnvironmentVariable(DefaultDebVariable) is { Length: > 0 } env && File.Exists(env)) return env;
        if (Newest(DefaultDebCacheDir, "linux-image-*-cloud-amd64_*.deb") is { } cached) return cached;
        string share = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "share", "microagent", "kernel"));
        return Newest(share, "*.deb");
    }

    /// <summary>The kernel package of <paramref name="version"/> (<c>linux-image-VERSION_*.deb</c>) where <see cref="FindDefaultDeb"/> looks; null if none.</summary>
    public static string? FindPackage(string version)
    {
        CheckVersion(version);
        string share = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "share", "microagent", "kernel"));
        return Newest(DefaultDebCacheDir, $"linux-image-{version}_*.deb") ?? Newest(share, $"linux-image-{version}_*.deb");
    }

    private async Task<InstalledKernel> InstallDebAsync(string deb, IProgress<string>? progress, CancellationToken ct, bool locked = false)
    {
        string work = NewWorkDir();
        try
        {
            string root = Path.Combine(work, "root");
            Directory.CreateDirectory(root);
            progress?.Report($"extracting {Path.GetFileName(deb)}");
            await ExternalTool.RunAsync("dpkg-deb", "dpkg", ["-x", deb, root], ct,
                remediation: $"check that {deb} is a complete Debian package (download it again)").ConfigureAwait(false);

            string[] images = Directory.Exists(Path.Combine(root, "boot"))
                ? Directory.GetFiles(Path.Combine(root, "boot"), "vmlinuz-*") : [];
            if (images.Length != 1)
                throw MicroagentException.Invalid($"{deb} is not a kernel package: expected one boot/vmlinuz-*, found {images.Length}",
                    "pass a Debian linux-image-*.deb (for example linux-image-cloud-amd64's dependency)");
            string version = Path.GetFileName(images[0])["vmlinuz-".Length..];
            CheckVersion(version);
            string? modules = new[] { Path.Combine(root, "lib", "modules", version), Path.Combine(root, "usr", "lib", "modules", version) }
                .FirstOrDefault(Directory.Exists);
            if (modules is null)
                throw MicroagentException.Invalid($"{deb} is not a kernel package: it has boot/vmlinuz-{version} but no lib/modules/{version}",
                    "pass a Debian linux-image-*.deb");

            string stage = Path.Combine(work, "stage");
            Directory.CreateDirectory(stage);
            File.Move(images[0], Path.Combine(stage, "vmlinuz"));
            Directory.Move(modules, Path.Combine(stage, "modules"));
            TryDeleteDirectory(root);
            return await CommitAsync(stage, version, Path.GetFullPath(deb), progress, ct, locked).ConfigureAwait(false);
        }
        finally
        {
            TryDeleteDirectory(work);
        }
    }

    /// <summary>
    /// Runs depmod if needed, writes metadata and swaps <paramref name="stage"/> into
    /// <c>kernels/&lt;version&gt;</c>. <paramref name="stage"/> holds vmlinuz and optionally modules/.
    /// </summary>
    private async Task<InstalledKernel> CommitAsync(string stage, string version, string source, IProgress<string>? progress,
        CancellationToken ct, bool locked = false)
    {
        string stagedModules = Path.Combine(stage, "modules");
        if (!Directory.Exists(stagedModules)) Directory.CreateDirectory(stagedModules);
        else if (!File.Exists(Path.Combine(stagedModules, "modules.dep")) && Directory.EnumerateFiles(stagedModules, "*.ko*", SearchOption.AllDirectories).Any())
        {
            // depmod -b ROOT VERSION reads ROOT/lib/modules/VERSION: lend it the staged tree under that shape.
            progress?.Report("generating modules.dep with depmod");
            string depRoot = Path.Combine(Path.GetDirectoryName(stage)!, "depmod");
            string linked = Path.Combine(depRoot, "lib", "modules", version);
            Directory.CreateDirectory(Path.GetDirectoryName(linked)!);
            Directory.Move(stagedModules, linked);
            try
            {
                await ExternalTool.RunAsync("depmod", "kmod", ["-b", depRoot, version], ct).ConfigureAwait(false);
            }
            finally
            {
                Directory.Move(linked, stagedModules);
            }
        }

        string vmlinuz = Path.Combine(stage, "vmlinuz");
        File.SetUnixFileMode(vmlinuz, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string sha = await Hashing.Sha256FileAsync(vmlinuz, ct).ConfigureAwait(false);

        StatePaths.EnsureDirectory(_paths.Kernels);
        string final = Path.Combine(_paths.Kernels, version);
        var kernel = new InstalledKernel(version, Path.Combine(final, "vmlinuz"), Path.Combine(final, "modules"), sha,
            DateTimeOffset.UtcNow, source);
        StatePaths.WriteAtomic(Path.Combine(stage, MetadataFile), JsonSerializer.SerializeToUtf8Bytes(kernel, KernelJsonContext.Default.InstalledKernel));
        File.SetUnixFileMode(stage, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        IDisposable? held = locked ? null : await FileLock.AcquireAsync(Path.Combine(_paths.Kernels, ".install.lock"), ct).ConfigureAwait(false);
        try
        {
            string? old = null;
            if (Directory.Exists(final))
            {
                old = Path.Combine(_paths.Kernels, $".old-{version}-{Guid.NewGuid():N}");
                Directory.Move(final, old);
            }
            Directory.Move(stage, final);
            if (old is not null) TryDeleteDirectory(old);
        }
        finally
        {
            held?.Dispose();
        }
        progress?.Report($"installed kernel {version}");
        return kernel;
    }

    private static InstalledKernel? TryLoad(string dir)
    {
        string meta = Path.Combine(dir, MetadataFile);
        if (!File.Exists(meta)) return null;
        try
        {
            var k = JsonSerializer.Deserialize(File.ReadAllBytes(meta), KernelJsonContext.Default.InstalledKernel);
            // Paths are re-derived from the directory so a moved state dir stays usable.
            return k is null ? null : k with { KernelPath = Path.Combine(dir, "vmlinuz"), ModulesDir = Path.Combine(dir, "modules") };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private string NewWorkDir()
    {
        StatePaths.EnsureDirectory(_paths.Tmp);
        string work = Path.Combine(_paths.Tmp, $"kernel-{Guid.NewGuid():N}");
        StatePaths.EnsureDirectory(work);
        return work;
    }

    /// <summary>For <c>ROOT/boot/vmlinuz-V</c>, the directory <c>ROOT/lib/modules/V</c> (or usr/lib/modules/V) if it exists.</summary>
    private static string? SiblingModulesDir(string kernelImagePath)
    {
        string full = Path.GetFullPath(kernelImagePath);
        string name = Path.GetFileName(full);
        string? boot = Path.GetDirectoryName(full);
        if (!name.StartsWith("vmlinuz-", StringComparison.Ordinal) || boot is null || Path.GetFileName(boot) != "boot") return null;
        string root = Path.GetDirectoryName(boot) ?? "/";
        string version = name["vmlinuz-".Length..];
        return new[] { Path.Combine(root, "lib", "modules", version), Path.Combine(root, "usr", "lib", "modules", version) }
            .FirstOrDefault(Directory.Exists);
    }

    private static bool IsDeb(string path)
    {
        Span<byte> magic = stackalloc byte[8];
        using var fs = File.OpenRead(path);
        return fs.ReadAtLeast(magic, 8, throwOnEndOfStream: false) == 8 && magic.SequenceEqual("!<arch>\n"u8);
    }

    /// <summary>
    /// Version from a bzImage's setup header (Documentation/arch/x86/boot.rst): "HdrS" at 0x202,
    /// kernel_version (u16) at 0x20E points to a NUL-terminated string at that offset + 0x200
    /// whose first word is the release. Null when the file is not a bzImage.
    /// </summary>
    internal static string? ReadBzImageVersion(string path)
    {
        using var fs = File.OpenRead(path);
        Span<byte> hdr = stackalloc byte[0x210];
        if (fs.ReadAtLeast(hdr, hdr.Length, throwOnEndOfStream: false) < hdr.Length) return null;
        if (!hdr.Slice(0x202, 4).SequenceEqual("HdrS"u8)) return null;
        int ptr = hdr[0x20E] | (hdr[0x20F] << 8);
        if (ptr == 0) return null;
        fs.Position = ptr + 0x200;
        Span<byte> buf = stackalloc byte[256];
        int n = fs.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
        string text = Encoding.ASCII.GetString(buf[..n]);
        int end = text.IndexOfAny([' ', '\0']);
        string v = end >= 0 ? text[..end] : text;
        return v.Length > 0 && v.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '+') ? v : null;
    }

    private static void CheckVersion(string version)
    {
        if (version.Length == 0 || version.StartsWith('.') || version == "default" ||
            !version.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '+'))
            throw MicroagentException.Invalid($"invalid kernel version `{version}`", "use a version like 6.1.0-56-cloud-amd64");
    }

    /// <summary>Compares dotted/dashed versions numerically where both parts are numbers.</summary>
    internal static int CompareVersions(string a, string b)
    {
        string[] pa = a.Split('.', '-', '+', '_'), pb = b.Split('.', '-', '+', '_');
        for (int i = 0; i < Math.Min(pa.Length, pb.Length); i++)
        {
            int c = long.TryParse(pa[i], out long na) && long.TryParse(pb[i], out long nb)
                ? na.CompareTo(nb) : string.CompareOrdinal(pa[i], pb[i]);
            if (c != 0) return c;
        }
        return pa.Length.CompareTo(pb.Length);
    }

    private static string? Newest(string dir, string pattern)
    {
        if (!Directory.Exists(dir)) return null;
        return Directory.GetFiles(dir, pattern)
            .OrderByDescending(f => Path.GetFileName(f), Comparer<string>.Create(CompareVersions))
            .FirstOrDefault();
    }

    /// <summary>Copies a directory tree; symbolic links (such as a dangling <c>build</c> link) are skipped.</summary>
    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null) continue;
            string dest = Path.Combine(to, entry.Name);
            if (entry is DirectoryInfo) CopyTree(entry.FullName, dest);
            else File.Copy(entry.FullName, dest);
        }
    }

    internal static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static MicroagentException NoDefaultDeb() => MicroagentException.NotFound(
        $"no kernel is installed and no default kernel package was found (${DefaultDebVariable}, {DefaultDebCacheDir}/linux-image-*-cloud-amd64_*.deb)",
        "run scripts/install.sh to download the Debian cloud kernel, or `microagent kernel install PATH`");
}
