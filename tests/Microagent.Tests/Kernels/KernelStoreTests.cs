using System.Diagnostics;
using System.Text;
using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Tests.Images;
using Xunit.Abstractions;

namespace Microagent.Tests.Kernels;

/// <summary>A fact that runs only when a Debian cloud kernel .deb is on this machine.</summary>
public sealed class RealKernelDebFactAttribute : FactAttribute
{
    public RealKernelDebFactAttribute()
    {
        if (KernelStoreTests.FindRealDeb() is null)
            Skip = "no Debian kernel .deb in /var/cache/microagent/kernel or /tmp/k (run scripts/install.sh to download one)";
    }
}

public sealed class KernelStoreTests : IDisposable
{
    private const string Version = "9.9.9-test";
    private readonly TempDir _tmp = new();
    private readonly StatePaths _paths;
    private readonly ITestOutputHelper _out;

    public KernelStoreTests(ITestOutputHelper output)
    {
        _out = output;
        _paths = new StatePaths(Path.Combine(_tmp.Path, "state"));
    }

    public void Dispose() => _tmp.Dispose();

    public static string? FindRealDeb()
        => new[] { "/var/cache/microagent/kernel", "/tmp/k" }
            .Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "linux-image-*.deb"))
            .FirstOrDefault();

    /// <summary>A file with a bzImage setup header whose version string is <paramref name="version"/>.</summary>
    private string FakeBzImage(string version, string name = "vmlinuz")
    {
        byte[] img = new byte[0x1000];
        Encoding.ASCII.GetBytes("HdrS").CopyTo(img, 0x202);
        img[0x20E] = 0x00; img[0x20F] = 0x01; // kernel_version = 0x100 -> string at 0x300
        Encoding.ASCII.GetBytes($"{version} (test@example) #1 SMP\0").CopyTo(img, 0x300);
        Random.Shared.NextBytes(img.AsSpan(0x800));
        string path = Path.Combine(_tmp.Path, name);
        File.WriteAllBytes(path, img);
        return path;
    }

    /// <summary>A synthetic /lib/modules/VERSION tree with modules.dep, one .ko.xz and one .ko.zst.</summary>
    private string FakeModules(string version)
    {
        string dir = Path.Combine(_tmp.Path, "modules", version);
        void Ko(string rel, string content)
        {
            string p = Path.Combine(dir, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(p)!);
            File.WriteAllText(p, content);
        }
        Ko("kernel/drivers/virtio/virtio.ko", "virtio");
        Ko("kernel/drivers/virtio/virtio_pci.ko", "virtio_pci");
        Ko("kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio (xz)");
        TestImages.Run("xz", Path.Combine(dir, "kernel/drivers/virtio/virtio_mmio.ko"));
        Ko("kernel/drivers/block/virtio_blk.ko", "virtio_blk (zstd)");
        TestImages.Run("zstd", "-q", "--rm", Path.Combine(dir, "kernel/drivers/block/virtio_blk.ko"));
        Ko("kernel/net/vmw_vsock/vsock.ko", "vsock");
        Ko("kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko", "transport");
        File.WriteAllText(Path.Combine(dir, "modules.dep"), """
            kernel/drivers/virtio/virtio.ko:
            kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko
            kernel/drivers/virtio/virtio_mmio.ko.xz: kernel/drivers/virtio/virtio.ko
            kernel/drivers/block/virtio_blk.ko.zst: kernel/drivers/virtio/virtio.ko
            kernel/net/vmw_vsock/vsock.ko:
            kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko

            """);
        File.WriteAllText(Path.Combine(dir, "modules.builtin"), "kernel/drivers/virtio/virtio_ring.ko\n");
        File.CreateSymbolicLink(Path.Combine(dir, "build"), "/nonexistent/headers"); // dangling, as on real systems
        return dir;
    }

    [Fact]
    public async Task InstallsFromKernelImageListsVerifiesAndReinstallsCleanly()
    {
        var store = new KernelStore(_paths);
        Assert.Null(store.GetDefault());
        string vmlinuz = FakeBzImage(Version);
        InstalledKernel k = await store.InstallImageAsync(vmlinuz, FakeModules(Version));

        Assert.Equal(Version, k.Version);
        Assert.Equal(Path.Combine(_paths.Kernels, Version, "vmlinuz"), k.KernelPath);
        Assert.Equal(await Microagent.Tools.Hashing.Sha256FileAsync(vmlinuz), k.Sha256);
        Assert.True(File.Exists(Path.Combine(k.ModulesDir, "modules.dep")));
        Assert.True(File.Exists(Path.Combine(k.ModulesDir, "kernel/drivers/block/virtio_blk.ko.zst")));
        Assert.Equal("0:0:600", TestImages.Stat(Path.Combine(_paths.Kernels, Version, "kernel.json")));
        Assert.Equal("0:0:700", TestImages.Stat(_paths.Kernels));
        await store.VerifyAsync(k);

        var listed = Assert.Single(store.List());
        Assert.Equal((k.Version, k.Sha256, k.KernelPath), (listed.Version, listed.Sha256, listed.KernelPath));
        Assert.Equal(Version, store.GetDefault()?.Version);
        Assert.Equal(Version, (await store.EnsureDefaultAsync()).Version); // installed: no .deb needed

        // Reinstall of the same version replaces it; plain image without modules; newest wins by version.
        InstalledKernel again = await store.InstallAsync(FakeBzImage(Version, "vmlinuz2"));
        Assert.NotEqual(k.Sha256, again.Sha256);
        Assert.Empty(Directory.GetFileSystemEntries(again.ModulesDir));
        Assert.Single(store.List());
        Assert.Empty(Directory.GetDirectories(_paths.Kernels, ".*"));
        Assert.Empty(Directory.GetFileSystemEntries(_paths.Tmp));

        await store.InstallAsync(FakeBzImage("10.0.1-test", "vmlinuz3"));
        Assert.Equal("10.0.1-test", store.GetDefault()?.Version);
        store.SetDefault(Version);
        Assert.Equal(Version, store.GetDefault()?.Version);
    }

    [Fact]
    public async Task VerifyDetectsTampering()
    {
        var store = new KernelStore(_paths);
        InstalledKernel k = await store.InstallImageAsync(FakeBzImage(Version), modulesDir: null);
        byte[] bytes = File.ReadAllBytes(k.KernelPath);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(k.KernelPath, bytes);
        var e = await Assert.ThrowsAsync<MicroagentException>(() => store.VerifyAsync(k));
        Assert.Equal(ErrorKind.Permanent, e.Kind);
        Assert.Contains($"sha256 changed: recorded {k.Sha256}, now ", e.Message);
        Assert.Contains("microagent kernel install", e.Remediation);

        File.Delete(k.KernelPath);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => store.VerifyAsync(k))).Kind);
    }

    [Fact]
    public async Task BadSourcesAreTypedErrors()
    {
        var store = new KernelStore(_paths);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => store.InstallAsync("/nonexistent/vmlinuz"))).Kind);
        string junk = Path.Combine(_tmp.Path, "junk");
        File.WriteAllText(junk, "not a kernel");
        Assert.Equal(ErrorKind.Invalid, (await Assert.ThrowsAsync<MicroagentException>(() => store.InstallAsync(junk))).Kind);

        // A .deb that is not a kernel package.
        string pkg = _tmp.Sub("pkg");
        Directory.CreateDirectory(Path.Combine(pkg, "DEBIAN"));
        File.WriteAllText(Path.Combine(pkg, "DEBIAN", "control"), "Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: x\n");
        Directory.CreateDirectory(Path.Combine(pkg, "usr/share/x"));
        File.WriteAllText(Path.Combine(pkg, "usr/share/x/f"), "f");
        string deb = Path.Combine(_tmp.Path, "x.deb");
        TestImages.Run("dpkg-deb", "-b", "-Zgzip", pkg, deb);
        var e = await Assert.ThrowsAsync<MicroagentException>(() => store.InstallAsync(deb));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains("not a kernel package", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(_paths.Tmp));
    }

    [Fact]
    public async Task InitramfsCarriesAgentLibsAndDecompressedModulesInLoadOrder()
    {
        var store = new KernelStore(_paths);
        InstalledKernel k = await store.InstallImageAsync(FakeBzImage(Version), FakeModules(Version));
        string agent = Path.Combine(_tmp.Path, "agent");
        File.Copy("/bin/true", agent);

        var builder = new InitramfsBuilder(_paths);
        string path = await builder.EnsureAsync(k, agent);
        Assert.StartsWith(_paths.Initramfs + "/", path);
        Assert.Equal("0:0:600", TestImages.Stat(path));
        var entries = CpioReader.Read(File.ReadAllBytes(path)).ToDictionary(e => e.Name);

        Assert.Equal(0x81EDu, entries["init"].Mode);
        Assert.Equal(File.ReadAllBytes("/bin/true"), entries["init"].Data);
        Assert.True(entries.ContainsKey("lib64/ld-linux-x86-64.so.2"));
        Assert.Equal(File.ReadAllBytes("/lib/x86_64-linux-gnu/libc.so.6"), entries["lib/x86_64-linux-gnu/libc.so.6"].Data);
        foreach (string d in (string[])["dev", "proc", "sys", "newroot", "tmp", "run", "etc"])
            Assert.Equal(0x41EDu, entries[d].Mode);

        string mods = $"/lib/modules/{Version}/kernel";
        Assert.Equal(
            $"{mods}/drivers/virtio/virtio.ko\n{mods}/drivers/virtio/virtio_pci.ko\n{mods}/drivers/virtio/virtio_mmio.ko\n" +
            $"{mods}/drivers/block/virtio_blk.ko\n{mods}/net/vmw_vsock/vsock.ko\n{mods}/net/vmw_vsock/vmw_vsock_virtio_transport.ko\n",
            Encoding.UTF8.GetString(entries["etc/microagent/modules"].Data));
        Assert.Empty(entries["etc/microagent/modules-net"].Data); // the fake kernel has no nf_tables: no user-network modules
        Assert.Equal("virtio_mmio (xz)", Encoding.UTF8.GetString(entries[$"lib/modules/{Version}/kernel/drivers/virtio/virtio_mmio.ko"].Data));
        Assert.Equal("virtio_blk (zstd)", Encoding.UTF8.GetString(entries[$"lib/modules/{Version}/kernel/drivers/block/virtio_blk.ko"].Data));

        // Cached: same path, same bytes; a different agent gives a different archive.
        DateTime built = File.GetLastWriteTimeUtc(path);
        Assert.Equal(path, await builder.EnsureAsync(k, agent));
        Assert.Equal(built, File.GetLastWriteTimeUtc(path));
        File.Copy("/bin/false", agent, overwrite: true);
        Assert.NotEqual(path, await builder.EnsureAsync(k, agent));
        Assert.Empty(Directory.GetFiles(_paths.Initramfs, "*.tmp"));

        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => builder.EnsureAsync(k, "/nonexistent/agent"))).Kind);
    }

    [Fact]
    public async Task BootVmlinuzPathPicksUpSiblingModulesAndModulelessKernelsGetAnEmptyList()
    {
        string root = _tmp.Sub("sysroot");
        Directory.CreateDirectory(Path.Combine(root, "boot"));
        string modules = FakeModules(Version);
        Directory.CreateDirectory(Path.Combine(root, "lib", "modules"));
        Directory.Move(modules, Path.Combine(root, "lib", "modules", Version));
        File.Move(FakeBzImage(Version), Path.Combine(root, "boot", $"vmlinuz-{Version}"));
        var store = new KernelStore(_paths);
        InstalledKernel k = await store.InstallAsync(Path.Combine(root, "boot", $"vmlinuz-{Version}"));
        Assert.True(File.Exists(Path.Combine(k.ModulesDir, "modules.dep")));

        InstalledKernel bare = await store.InstallImageAsync(FakeBzImage("1.2.3-bare", "bare"), modulesDir: null);
        string agent = Path.Combine(_tmp.Path, "agent");
        File.Copy("/bin/true", agent);
        var entries = CpioReader.Read(File.ReadAllBytes(await new InitramfsBuilder(_paths).EnsureAsync(bare, agent))).ToDictionary(e => e.Name);
        Assert.Empty(entries["etc/microagent/modules"].Data);
    }

    [RealKernelDebFact]
    public async Task InstallsTheDebianCloudKernelAndBuildsItsInitramfs()
    {
        string deb = FindRealDeb()!;
        var store = new KernelStore(_paths);
        var sw = Stopwatch.StartNew();
        InstalledKernel k = await store.InstallAsync(deb);
        _out.WriteLine($"install {Path.GetFileName(deb)}: {sw.ElapsedMilliseconds} ms, version {k.Version}");
        Assert.EndsWith("-cloud-amd64", k.Version);
        Assert.Equal(k.Version, KernelStore.ReadBzImageVersion(k.KernelPath));
        Assert.True(File.Exists(Path.Combine(k.ModulesDir, "modules.dep")));
        await store.VerifyAsync(k);

        sw.Restart();
        string agent = Path.Combine(_tmp.Path, "agent");
        File.Copy("/bin/true", agent);
        string initramfs = await new InitramfsBuilder(_paths).EnsureAsync(k, agent);
        _out.WriteLine($"initramfs: {sw.ElapsedMilliseconds} ms, {new FileInfo(initramfs).Length} bytes");
        var entries = CpioReader.Read(File.ReadAllBytes(initramfs)).ToList();
        var names = entries.Select(e => e.Name).ToList();
        foreach (string m in (string[])["virtio_pci.ko", "virtio_mmio.ko", "virtio_blk.ko", "vmw_vsock_virtio_transport.ko", "vsock.ko"])
            Assert.Contains(names, n => n.EndsWith("/" + m, StringComparison.Ordinal));

        // The user network's modules are listed apart (loaded only on request), dependencies first, every file present.
        string[] net = Encoding.UTF8.GetString(entries.Single(e => e.Name == "etc/microagent/modules-net").Data).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int At(string m) => Array.FindIndex(net, l => l.EndsWith("/" + m, StringComparison.Ordinal));
        foreach (string m in (string[])["nfnetlink.ko", "nf_tables.ko", "nf_conntrack.ko", "nf_nat.ko", "nft_chain_nat.ko", "nft_redir.ko", "dummy.ko"])
            Assert.True(At(m) >= 0, $"{m} missing from modules-net: {string.Join(' ', net)}");
        Assert.True(At("nfnetlink.ko") < At("nf_tables.ko") && At("nf_tables.ko") < At("nft_redir.ko") && At("nf_nat.ko") < At("nft_redir.ko"));
        Assert.All(net, l => Assert.Contains(l.TrimStart('/'), names));
        Assert.DoesNotContain(Encoding.UTF8.GetString(entries.Single(e => e.Name == "etc/microagent/modules").Data), "nf_tables");
    }
}
