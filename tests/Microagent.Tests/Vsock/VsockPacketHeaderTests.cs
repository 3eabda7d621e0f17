using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

public class VsockPacketHeaderTests
{
    [Fact]
    public void RoundTripsEveryField()
    {
        var h = new VsockPacketHeader(3, 2, 1234, 5678, 4096, VsockConstants.TypeStream, VsockOp.Rw, 3, 262144, 99);
        var bytes = new byte[VsockPacketHeader.Size];
        h.Write(bytes);
        Assert.Equal(h, VsockPacketHeader.Read(bytes));
    }

    [Fact]
    public void UsesTheKernelLayout()
    {
        var bytes = new byte[VsockPacketHeader.Size];
        new VsockPacketHeader(0x0102030405060708, 2, 0x11223344, 5, 6, 1, VsockOp.Shutdown, 2, 0xAABBCCDD, 7).Write(bytes);
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4, 3, 2, 1 }, bytes[..8]);       // le64 src_cid
        Assert.Equal(2, bytes[8]);                                               // le64 dst_cid
        Assert.Equal(new byte[] { 0x44, 0x33, 0x22, 0x11 }, bytes[16..20]);      // le32 src_port
        Assert.Equal(5, bytes[20]);                                              // le32 dst_port
        Assert.Equal(6, bytes[24]);                                              // le32 len
        Assert.Equal(1, bytes[28]);                                              // le16 type
        Assert.Equal((byte)VsockOp.Shutdown, bytes[30]);                         // le16 op
        Assert.Equal(2, bytes[32]);                                              // le32 flags
        Assert.Equal(new byte[] { 0xDD, 0xCC, 0xBB, 0xAA }, bytes[36..40]);      // le32 buf_alloc
        Assert.Equal(7, bytes[40]);                                              // le32 fwd_cnt
    }

    [Fact]
    public void RejectsShortBuffers()
    {
        Assert.Throws<ArgumentException>(() => VsockPacketHeader.Read(new byte[43]));
        Assert.Throws<ArgumentException>(() => default(VsockPacketHeader).Write(new byte[43]));
    }
}
