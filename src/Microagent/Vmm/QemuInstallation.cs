using System.Diagnostics;
using System.Text.RegularExpressions;
using Microagent.Errors;

namespace Microagent.Vmm;

/// <summary>The QEMU binaries and firmware this host provides.</summary>
internal sealed partial record QemuInstallation(string SystemBinary, string ImgBinary, Version Version, string? QbootRom)
{
    /// <summary>Oldest supported QEMU major version (vhost-user-vsock + memfd backends as used here).</summary>
    public const int MinimumMajor = 10;

    private const string Remediation = "run scripts/install.sh (installs QEMU 10 from bookworm-backports), or `make demo`";

    /// <summary>
    /// Finds qemu-system-x86_64 and qemu-img on PATH and reads the version. With <paramref name="cacheDir"/>, the
    /// version is remembered per binary (path, size, mtime) so a boot does not spawn <c>qemu --version</c> each time.
    /// </summary>
    public static QemuInstallation Locate(string? cacheDir = null)
    {
        string system = FindOnPath("qemu-system-x86_64")
            ?? throw MicroagentException.Unsupported("qemu-system-x86_64 is not installed", Remediation);
        string img = FindOnPath("qemu-img")
            ?? throw MicroagentException.Unsupported("qemu-img is not installed", Remediation);
        var version = cacheDir is null ? ReadVersion(system) : CachedVersion(system, cacheDir);
        if (version.Major < MinimumMajor)
            throw MicroagentException.Unsupported($"QEMU {version} is too old; version {MinimumMajor} or newer is required", Remediation);
        string? qboot = new[] { "/usr/share/qemu/qboot.rom", "/usr/share/qemu/qboot.bin" }.FirstOrDefault(File.Exists);
        return new QemuInstallation(system, img, version, qboot);
    }

    /// <summary>Parses <c>QEMU emulator version X.Y.Z</c>.</summary>
    public static Version ParseVersion(string versionOutput)
    {
        var m = VersionPattern().Match(versionOutput);
        if (!m.Success) throw MicroagentException.Permanent($"cannot parse QEMU version from '{versionOutput.Trim()}'", Remediation);
        return new Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), m.Groups[3].Success ? int.Parse(m.Groups[3].Value) : 0);
    }

    private static Version CachedVersion(string binary, string cacheDir)
    {
        var info = new FileInfo(binary);
        string stamp = $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
        string path = Path.Combine(cacheDir, "qemu-version");
        try
        {
            if (File.Exists(path) && File.ReadAllLines(path) is [var cachedStamp, var cachedVersion] && cachedStamp == stamp
                && Version.TryParse(cachedVersion, out var v))
                return v;
        }
        catch (IOException) { }
        var version = ReadVersion(binary);
        StatePaths.EnsureDirectory(cacheDir);
        StatePaths.WriteAtomic(path, $"{stamp}\n{version}\n");
        return version;
    }

    private static Version ReadVersion(string binary)
    {
        var psi = new ProcessStartInfo(binary, "--version") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return ParseVersion(output);
    }

    /// <summary>First executable named <paramref name="name"/> on PATH.</summary>
    public static string? FindOnPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    [GeneratedRegex(@"version (\d+)\.(\d+)(?:\.(\d+))?")]
    private static partial Regex VersionPattern();
}
