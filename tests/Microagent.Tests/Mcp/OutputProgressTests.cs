using System.Text;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>Command output as progress messages: every byte kept, chunks reported in order, UTF-8 never split.</summary>
public sealed class OutputProgressTests
{
    private sealed class Recorder : IProgress<string>
    {
        public List<string> Messages { get; } = [];
        public void Report(string value) => Messages.Add(value);
    }

    [Fact]
    public async Task Chunks_become_prefixed_messages_and_split_utf8_is_decoded_whole()
    {
        var progress = new Recorder();
        using var sink = new OutputProgress("stdout", progress);
        byte[] text = Encoding.UTF8.GetBytes("héllo\n");
        int cut = Array.IndexOf(text, (byte)0xC3) + 1; // inside the two-byte 'é'
        await sink.WriteAsync(text.AsMemory(0, cut));
        await sink.WriteAsync(text.AsMemory(cut));
        Assert.Equal(text, sink.Bytes);
        Assert.Equal(["stdout: h", "stdout: éllo\n"], progress.Messages);
    }
}
