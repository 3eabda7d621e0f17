using Microagent.Tools;

namespace Microagent.Tests.Tools;

public sealed class CappedBufferTests
{
    [Fact]
    public async Task Keeps_the_first_bytes_and_counts_the_rest()
    {
        var buffer = new CappedBuffer(limit: 10);
        buffer.Write("hello "u8);
        await buffer.WriteAsync(new byte[1 << 20]);
        buffer.Write("tail"u8);
        Assert.Equal(6 + (1 << 20) + 4 - 10, buffer.Dropped);
        Assert.StartsWith("hello \0\0\0\0", buffer.Text());
        Assert.Contains($"({buffer.Dropped} more bytes)", buffer.Text());
    }
}
