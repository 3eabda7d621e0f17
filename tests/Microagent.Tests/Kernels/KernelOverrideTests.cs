using System.Text;
using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Tests.Images;

namespace Microagent.Tests.Kernels;

/// <summary>A one-boot kernel override (<c>start --kernel</c>) is hash-verified against the installed kernels.</summary>
public sealed class KernelOverrideTests : IDisposable
{
    private const string Version = "9.9.8-test";
    private readonly TempDir _tmp = new();
    private readonly KernelStore _store;

    public KernelOverrideTests() => _store = new KernelStore(new StatePaths(Path.Combine(_tmp.Path, "state")));

    public void Dispose() => _tmp.Dispose();

    private string BzImage(string version, string name)
    {
        byte[] img = new byte[0x1000];
        Encoding.ASCII.GetBytes("HdrS").CopyTo(img, 0x202);
        img[0x20F] = 0x01; // kernel_version = 0x100: the string is at 0x300
        Encoding.ASCII.GetBytes($"{version} (test@example) #1 SMP\0").CopyTo(img, 0x300);
        Random.Shared.NextBytes(img.AsSpan(0x800));
        string path = Path.Combine(_tmp.Path, name);
        File.WriteAllBytes(path, img);
        return path;
    }

    [Fact]
    public async Task A_copy_of_an_installed_kernel_resolves_to_it_with_the_copy_as_its_image()
    {
        var installed = await _store.InstallImageAsync(BzImage(Version, "vmlinuz"), modulesDir: null);
        string copy = Path.Combine(_tmp.Path, "elsewhere");
        File.Copy(installed.KernelPath, copy);
        var k = await KernelOverride.ResolveAsync(_store, copy, default);
        Assert.Equal(copy, k.KernelPath);
        Assert.Equal(installed.Sha256, k.Sha256);
        Assert.Equal(installed.ModulesDir, k.ModulesDir);
    }

    [Fact]
    public async Task A_damaged_copy_is_refused_naming_both_hashes()
    {
        var installed = await _store.InstallImageAsync(BzImage(Version, "vmlinuz"), modulesDir: null);
        string copy = Path.Combine(_tmp.Path, "damaged");
        byte[] bytes = File.ReadAllBytes(installed.KernelPath);
        bytes[0xF00] ^= 0xFF;
        File.WriteAllBytes(copy, bytes);
        var e = await Assert.ThrowsAsync<MicroagentException>(() => KernelOverride.ResolveAsync(_store, copy, default));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("kernel", e.Field);
        Assert.Contains(installed.Sha256, e.Message);
        Assert.Contains("different build or a damaged copy", e.Message);
        Assert.Contains("kernel install", e.Remediation);
    }

    [Fact]
    public async Task A_kernel_of_a_version_not_installed_a_file_that_is_not_a_bzImage_and_a_missing_file_are_refused()
    {
        var other = await Assert.ThrowsAsync<MicroagentException>(() => KernelOverride.ResolveAsync(_store, BzImage("1.2.3-other", "other"), default));
        Assert.Equal(ErrorKind.Invalid, other.Kind);
        Assert.Contains("not an installed kernel", other.Message);

        string text = Path.Combine(_tmp.Path, "text");
        File.WriteAllText(text, "not a kernel");
        var notBz = await Assert.ThrowsAsync<MicroagentException>(() => KernelOverride.ResolveAsync(_store, text, default));
        Assert.Equal(ErrorKind.Invalid, notBz.Kind);
        Assert.Contains("not a bzImage", notBz.Message);

        var missing = await Assert.ThrowsAsync<MicroagentException>(() => KernelOverride.ResolveAsync(_store, Path.Combine(_tmp.Path, "nope"), default));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
        Assert.Equal("kernel", missing.Field);
    }
}
