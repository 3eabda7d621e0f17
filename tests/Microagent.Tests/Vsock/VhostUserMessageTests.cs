using System.Buffers.Binary;
using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

public class VhostUserMessageTests
{
    private static VhostUserMessage Message(VhostUserRequest request, byte[] payload)
    {
        var bytes = VhostUserMessage.EncodeRequest(request, payload);
        var header = VhostUserHeader.Read(bytes);
        return new VhostUserMessage(header, bytes[VhostUserHeader.Length..], []);
    }

    [Fact]
    public void HeaderRoundTrips()
    {
        var bytes = new byte[VhostUserHeader.Length];
        new VhostUserHeader(VhostUserRequest.GetVringBase, 0x5, 8).Write(bytes);
        Assert.Equal(new byte[] { 11, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0 }, bytes);
        var h = VhostUserHeader.Read(bytes);
        Assert.Equal(VhostUserRequest.GetVringBase, h.Request);
        Assert.Equal(1u, h.Version);
        Assert.Equal(8u, h.Size);
    }

    [Fact]
    public void ReplyCarriesReplyFlagAndPayload()
    {
        var reply = VhostUserMessage.EncodeReply(VhostUserRequest.GetFeatures, BitConverter.GetBytes(0x1_4000_0000UL));
        var h = VhostUserHeader.Read(reply);
        Assert.Equal(VhostUserConstants.FlagVersion | VhostUserConstants.FlagReply, h.Flags);
        Assert.Equal(8u, h.Size);
        Assert.Equal(0x1_4000_0000UL, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(12)));
    }

    [Fact]
    public void DecodesVringStateAndAddress()
    {
        var state = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(state, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(state.AsSpan(4), 128);
        Assert.Equal((1u, 128u), Message(VhostUserRequest.SetVringNum, state).ReadVringState());

        var addr = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(addr, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(8), 0x7f0000001000);
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(16), 0x7f0000003000);
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(24), 0x7f0000002000);
        var a = Message(VhostUserRequest.SetVringAddr, addr).ReadVringAddress();
        Assert.Equal(new VringAddress(1, 0, 0x7f0000001000, 0x7f0000003000, 0x7f0000002000, 0), a);
    }

    [Fact]
    public void DecodesMemoryTable()
    {
        var p = new byte[8 + 2 * 32];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 2);
        for (int i = 0; i < 2; i++)
        {
            var r = p.AsSpan(8 + i * 32);
            BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)i * 0x100000);
            BinaryPrimitives.WriteUInt64LittleEndian(r[8..], 0x1000);
            BinaryPrimitives.WriteUInt64LittleEndian(r[16..], 0x7f00_0000_0000UL + (ulong)i);
            BinaryPrimitives.WriteUInt64LittleEndian(r[24..], 0x2000);
        }
        var regions = Message(VhostUserRequest.SetMemTable, p).ReadMemoryTable();
        Assert.Equal(2, regions.Length);
        Assert.Equal(new MemoryRegionDescription(0x100000, 0x1000, 0x7f00_0000_0001, 0x2000), regions[1]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(9)]
    public void RejectsMemoryTablesWithBadRegionCounts(uint count)
    {
        var p = new byte[8 + 9 * 32];
        BinaryPrimitives.WriteUInt32LittleEndian(p, count);
        Assert.Throws<VhostUserProtocolException>(() => Message(VhostUserRequest.SetMemTable, p).ReadMemoryTable());
    }

    [Fact]
    public void RejectsTruncatedPayloads()
    {
        var p = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 2); // claims two regions, carries none
        Assert.Throws<VhostUserProtocolException>(() => Message(VhostUserRequest.SetMemTable, p).ReadMemoryTable());
        Assert.Throws<VhostUserProtocolException>(() => Message(VhostUserRequest.SetFeatures, new byte[4]).ReadU64());
        Assert.Throws<VhostUserProtocolException>(() => Message(VhostUserRequest.SetVringAddr, new byte[39]).ReadVringAddress());
        Assert.Throws<VhostUserProtocolException>(() => Message(VhostUserRequest.GetConfig, new byte[11]).ReadConfigRequest());
    }

    [Fact]
    public void DecodesConfigRequest()
    {
        var p = new byte[12 + 8];
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), 8);
        Assert.Equal((0u, 8u, 0u), Message(VhostUserRequest.GetConfig, p).ReadConfigRequest());
    }
}
