using Microagent.Guest.Init;

namespace Microagent.Tests.Guest.Init;

public sealed class KernelCmdlineTests
{
    [Fact]
    public void Defaults()
    {
        KernelCmdline c = KernelCmdline.Parse("console=ttyS0 panic=-1 quiet\n");
        Assert.Equal(new KernelCmdline("/dev/vda", "ext4", null, "workspace", false), c);
    }

    [Fact]
    public void ExplicitKeys()
    {
        KernelCmdline c = KernelCmdline.Parse("console=ttyS0 microagent.root=/dev/vdb microagent.rootfstype=xfs microagent.rootflags=noatime,discard microagent.hostname=ws-1 microagent.selftest=1");
        Assert.Equal(new KernelCmdline("/dev/vdb", "xfs", "noatime,discard", "ws-1", true), c);
    }

    [Fact]
    public void NetworkModulePreload()
    {
        Assert.True(KernelCmdline.Parse("quiet microagent.hostname=microagent microagent.netmodules=preload").PreloadNetworkModules);
        Assert.False(KernelCmdline.Parse("quiet microagent.netmodules=other").PreloadNetworkModules);
        Assert.False(KernelCmdline.Parse("quiet").PreloadNetworkModules);
    }
}
