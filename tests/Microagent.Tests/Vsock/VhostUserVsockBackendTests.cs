using System.Buffers.Binary;
using Microagent.Interop;
using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

public sealed class VhostUserVsockBackendTests : IDisposable
{
    private readonly List<string> _dirs = [];

    private string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ma-vsock-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        _dirs.Add(dir);
        return dir;
    }

    public void Dispose()
    {
        foreach (string dir in _dirs) if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    private static byte[] Call(int fd, VhostUserRequest request, byte[] payload)
    {
        SocketMessages.SendAll(fd, VhostUserMessage.EncodeRequest(request, payload));
        var header = new byte[VhostUserHeader.Length];
        Assert.Equal(header.Length, SocketMessages.Receive(fd, header, Span<int>.Empty, out _, out _));
        var h = VhostUserHeader.Read(header);
        Assert.Equal(request, h.Request);
        Assert.Equal(VhostUserConstants.FlagVersion | VhostUserConstants.FlagReply, h.Flags);
        var reply = new byte[h.Size];
        if (reply.Length > 0) Assert.Equal(reply.Length, SocketMessages.Receive(fd, reply, Span<int>.Empty, out _, out _));
        return reply;
    }

    [Fact]
    public async Task AnswersFeatureAndConfigQueriesAndCompletesOnDisconnect()
    {
        var dir = TempDir();
        var options = new VsockBackendOptions(Path.Combine(dir, "vhost.sock"), Path.Combine(dir, "vsock.sock"), GuestCid: 42);
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        int fd = UnixSockets.Connect(options.VhostUserSocketPath);
        try
        {
            Assert.Equal(VhostUserConstants.VirtioFVersion1 | VhostUserConstants.ProtocolFeaturesBit,
                BinaryPrimitives.ReadUInt64LittleEndian(Call(fd, VhostUserRequest.GetFeatures, [])));
            Assert.Equal(VhostUserConstants.ProtocolFConfig,
                BinaryPrimitives.ReadUInt64LittleEndian(Call(fd, VhostUserRequest.GetProtocolFeatures, [])));
            var config = new byte[12 + 8];
            BinaryPrimitives.WriteUInt32LittleEndian(config.AsSpan(4), 8);
            var reply = Call(fd, VhostUserRequest.GetConfig, config);
            Assert.Equal(42UL, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(12)));
        }
        finally
        {
            FileDescriptors.Close(fd);
        }
        await backend.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(backend.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ProtocolViolationFaultsCompletion()
    {
        var dir = TempDir();
        var options = new VsockBackendOptions(Path.Combine(dir, "vhost.sock"), Path.Combine(dir, "vsock.sock"));
        var logs = new List<string>();
        await using var backend = new VhostUserVsockBackend(options, s => { lock (logs) logs.Add(s); });
        backend.Start();
        int fd = UnixSockets.Connect(options.VhostUserSocketPath);
        try
        {
            var state = new byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(state, 7); // queue 7 does not exist
            SocketMessages.SendAll(fd, VhostUserMessage.EncodeRequest(VhostUserRequest.SetVringNum, state));
            var e = await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(() => backend.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Contains("queue index 7", e.Message);
        }
        finally
        {
            FileDescriptors.Close(fd);
        }
    }

    [Fact]
    public async Task DisposeWithoutFrontEndUnlinksSocketsAndRefusesHybridClients()
    {
        var dir = TempDir();
        var options = new VsockBackendOptions(Path.Combine(dir, "vhost.sock"), Path.Combine(dir, "vsock.sock"));
        var backend = new VhostUserVsockBackend(options);
        backend.Start();
        Assert.True(File.Exists(options.HybridSocketPath));
        await backend.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(File.Exists(options.VhostUserSocketPath));
        Assert.False(File.Exists(options.HybridSocketPath));
        var e = await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(() => HybridVsock.ConnectAsync(options.HybridSocketPath, 5000));
        Assert.True(e.Retryable);
    }
}
