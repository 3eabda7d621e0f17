using Microagent.Errors;
using Microagent.Kernels;

namespace Microagent.Tests.Kernels;

public sealed class ModulesDepTests
{
    private const string Dep = """
        kernel/drivers/virtio/virtio.ko:
        kernel/drivers/virtio/virtio_pci_modern_dev.ko:
        kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
        kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/virtio/virtio_mmio.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/block/virtio_blk.ko.zst: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/net/vmw_vsock/vsock.ko:
        kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
        kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/fs/some-thing.ko:
        """;

    private const string Builtin = "kernel/drivers/virtio/virtio_ring.ko\nkernel/fs/ext4/ext4.ko\n";

    [Fact]
    public void ResolvesClosureDependenciesFirstWithoutDuplicatesOrBuiltins()
    {
        var deps = ModulesDep.Parse(Dep, Builtin);
        var order = deps.Resolve(ModulesDep.Required);
        Assert.Equal(
        [
            "kernel/drivers/virtio/virtio.ko",
            "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
            "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
            "kernel/drivers/virtio/virtio_pci.ko",
            "kernel/drivers/virtio/virtio_mmio.ko.xz",
            "kernel/drivers/block/virtio_blk.ko.zst",
            "kernel/net/vmw_vsock/vsock.ko",
            "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
            "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko",
        ], order);
        Assert.True(deps.IsBuiltin("ext4"));
        Assert.Empty(deps.Resolve(["ext4", "virtio-ring"]));
        Assert.Equal(["kernel/fs/some-thing.ko"], deps.Resolve(["some_thing"]));
        Assert.Equal(["kernel/fs/some-thing.ko"], deps.Resolve(["some-thing"]));
    }

    [Theory]
    [InlineData("kernel/a/virtio-blk.ko.zst", "virtio_blk")]
    [InlineData("x.ko.xz", "x")]
    [InlineData("vmw_vsock_virtio_transport", "vmw_vsock_virtio_transport")]
    public void NormalisesNames(string input, string expected) => Assert.Equal(expected, ModulesDep.NormalizeName(input));

    [Fact]
    public void MissingModuleIsATypedErrorNamingIt()
    {
        var deps = ModulesDep.Parse("kernel/a.ko: kernel/b.ko\n");
        var e = Assert.Throws<MicroagentException>(() => deps.Resolve(["virtio_blk"]));
        Assert.Equal(ErrorKind.Unsupported, e.Kind);
        Assert.Contains("virtio_blk", e.Message);
        e = Assert.Throws<MicroagentException>(() => deps.Resolve(["a"]));
        Assert.Contains("`b` (needed by `a`)", e.Message);
    }

    [Theory]
    [InlineData("no colon here\n")]
    [InlineData("../../etc/x.ko:\n")]
    [InlineData("/abs/x.ko:\n")]
    public void MalformedFilesAreInvalid(string text)
        => Assert.Equal(ErrorKind.Invalid, Assert.Throws<MicroagentException>(() => ModulesDep.Parse(text)).Kind);
}
