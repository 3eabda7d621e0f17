using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

public class SplitVirtqueueTests
{
    private const ulong Base = 0x4000_0000;

    private static (FakeGuestMemory Memory, FakeDriver Driver, SplitVirtqueue Queue) Setup(int size = 8)
    {
        var memory = new FakeGuestMemory(Base, 1 << 20);
        var driver = new FakeDriver(memory, size);
        var q = new SplitVirtqueue();
        q.SetSize((uint)size);
        q.SetAddresses(memory, driver.Desc, driver.Avail, driver.Used);
        return (memory, driver, q);
    }

    [Fact]
    public void PopsMultiDescriptorChainsAndPublishesUsed()
    {
        var (memory, driver, q) = Setup();
        var (head, buffers) = driver.AddChain(FakeDriver.Readable(new byte[] { 1, 2, 3 }), FakeDriver.Writable(44), FakeDriver.Writable(4096));
        var chain = new List<DescriptorSegment>();

        Assert.True(q.HasAvailable(memory));
        Assert.Equal(PopResult.Chain, q.TryPop(memory, chain, out ushort popped));
        Assert.Equal(head, popped);
        Assert.Equal(3, chain.Count);
        Assert.Equal(new DescriptorSegment(buffers[0], 3, false), chain[0]);
        Assert.True(chain[1].Writable && chain[2].Writable);
        Assert.Equal(PopResult.Empty, q.TryPop(memory, chain, out _));

        q.PushUsed(memory, popped, 50);
        Assert.Equal(1, driver.UsedIdx);
        Assert.Equal((head, 50u), driver.UsedElem(0));
    }

    [Fact]
    public void ScatterAndGatherCrossDescriptorBoundaries()
    {
        var (memory, driver, q) = Setup();
        driver.AddChain(FakeDriver.Writable(44), FakeDriver.Writable(10), FakeDriver.Writable(100));
        var chain = new List<DescriptorSegment>();
        q.TryPop(memory, chain, out _);
        var data = Enumerable.Range(0, 80).Select(i => (byte)i).ToArray();
        Assert.Equal(154, DescriptorChains.WritableLength(chain));
        Assert.Equal(-1, DescriptorChains.ReadableLength(chain));
        Assert.True(DescriptorChains.Scatter(memory, chain, 40, data));
        var back = new byte[80];
        Assert.True(DescriptorChains.Gather(memory, chain, 40, back));
        Assert.Equal(data, back);
        Assert.False(DescriptorChains.Scatter(memory, chain, 100, new byte[60])); // 100 + 60 > 154
    }

    [Fact]
    public void HandlesIndexWrapAround()
    {
        var (memory, driver, q) = Setup(size: 4);
        q.LastAvailIndex = 65534;
        driver.AvailIdx = 65534;
        var chain = new List<DescriptorSegment>();
        var heads = new List<ushort>();
        for (int i = 0; i < 4; i++) heads.Add(driver.AddChain(FakeDriver.Readable(new byte[] { (byte)i })).Head);
        Assert.Equal(2, driver.AvailIdx); // wrapped
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(PopResult.Chain, q.TryPop(memory, chain, out ushort h));
            Assert.Equal(heads[i], h);
            var b = new byte[1];
            DescriptorChains.Gather(memory, chain, 0, b);
            Assert.Equal(i, b[0]);
            q.PushUsed(memory, h, 0);
        }
        Assert.Equal(PopResult.Empty, q.TryPop(memory, chain, out _));
        Assert.Equal(2, q.LastAvailIndex);
    }

    [Fact]
    public void AvailableIndexJumpBeyondQueueSizeIsFatal()
    {
        var (memory, driver, q) = Setup(size: 4);
        driver.AvailIdx = 5;
        Assert.Throws<VirtqueueException>(() => q.TryPop(memory, new List<DescriptorSegment>(), out _));
    }

    [Fact]
    public void HeadOutOfRangeIsFatal()
    {
        var (memory, driver, q) = Setup(size: 4);
        driver.Publish(7);
        Assert.Throws<VirtqueueException>(() => q.TryPop(memory, new List<DescriptorSegment>(), out _));
    }

    [Fact]
    public void BadChainsAreReportedWithTheirHead()
    {
        var (memory, driver, q) = Setup(size: 8);
        var chain = new List<DescriptorSegment>();

        driver.WriteDescriptor(0, 0x10, 16, 0, 0); // below guest memory
        driver.Publish(0);
        Assert.Equal(PopResult.BadChain, q.TryPop(memory, chain, out ushort h0));
        Assert.Equal(0, h0);
        Assert.Empty(chain);

        driver.WriteDescriptor(1, Base + (1 << 20) - 8, 16, 0, 0); // runs off the end
        driver.Publish(1);
        Assert.Equal(PopResult.BadChain, q.TryPop(memory, chain, out ushort h1));
        Assert.Equal(1, h1);

        driver.WriteDescriptor(2, Base + 0x8000, 16, FakeDriver.Next, 3); // a loop 2 -> 3 -> 2
        driver.WriteDescriptor(3, Base + 0x8000, 16, FakeDriver.Next, 2);
        driver.Publish(2);
        Assert.Equal(PopResult.BadChain, q.TryPop(memory, chain, out _));

        driver.WriteDescriptor(4, Base + 0x8000, 16, FakeDriver.Next, 9); // next out of range
        driver.Publish(4);
        Assert.Equal(PopResult.BadChain, q.TryPop(memory, chain, out _));

        driver.WriteDescriptor(5, Base + 0x8000, 16, FakeDriver.Indirect, 0);
        driver.Publish(5);
        Assert.Equal(PopResult.BadChain, q.TryPop(memory, chain, out _));

        driver.WriteDescriptor(6, Base + 0x8000, 16, FakeDriver.Next | FakeDriver.Write, 7); // writable before readable
        driver.WriteDescriptor(7, Base + 0x9000, 16, 0, 0);
        driver.Publish(6);
        Assert.Equal(PopResult.BadChain, q.TryPop(memory, chain, out _));
    }

    [Fact]
    public void RingsOutsideMemoryAndBadSizesAreRejected()
    {
        var memory = new FakeGuestMemory(Base, 1 << 16);
        var q = new SplitVirtqueue();
        Assert.Throws<VirtqueueException>(() => q.SetSize(0));
        Assert.Throws<VirtqueueException>(() => q.SetSize(65536));
        Assert.Throws<VirtqueueException>(() => q.SetAddresses(memory, Base, Base + 0x1000, Base + 0x2000)); // no size yet
        q.SetSize(256);
        Assert.Throws<VirtqueueException>(() => q.SetAddresses(memory, Base + 0xF800, Base + 0x1000, Base + 0x2000));
        Assert.False(q.HasAddresses);
    }

    [Fact]
    public void RespectsNoInterrupt()
    {
        var (memory, driver, q) = Setup();
        driver.AddChain(FakeDriver.Readable(new byte[1]));
        q.TryPop(memory, new List<DescriptorSegment>(), out ushort h);
        q.PushUsed(memory, h, 0);
        Assert.True(q.ShouldNotify(memory));
        driver.SetAvailFlags(1);
        Assert.False(q.ShouldNotify(memory));
    }
}
