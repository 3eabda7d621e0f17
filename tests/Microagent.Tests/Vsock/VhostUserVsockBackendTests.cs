using System.Buffers.Binary;
using Microagent.Errors;
using Microagent.Interop;
using Microagent.Vsock;

namespace Microagent.Tests.Vsock;

/// <summary>The backend driven through its real vhost-user socket, the test playing QEMU (the front-end).</summary>
public sealed class VhostUserVsockBackendTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private const ulong UserBase = 0x7f00_0000_0000, MemorySize = 1 << 20;
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

    private VsockBackendOptions Options(ulong cid = 3, bool reconnect = false)
    {
        var dir = TempDir();
        return new VsockBackendOptions(Path.Combine(dir, "vhost.sock"), Path.Combine(dir, "vsock.sock"), cid, reconnect);
    }

    private static byte[] Call(SafeFileDescriptor fd, VhostUserRequest request, byte[] payload)
    {
        SocketMessages.SendAll(fd, VhostUserMessage.EncodeRequest(request, payload));
        var header = new byte[VhostUserHeader.Length];
        Assert.Equal(header.Length, SocketMessages.Receive(fd, header, null, out _));
        var h = VhostUserHeader.Read(header);
        Assert.Equal(request, h.Request);
        Assert.Equal(VhostUserConstants.FlagVersion | VhostUserConstants.FlagReply, h.Flags);
        var reply = new byte[h.Size];
        if (reply.Length > 0) Assert.Equal(reply.Length, SocketMessages.Receive(fd, reply, null, out _));
        return reply;
    }

    private static void Send(SafeFileDescriptor fd, VhostUserRequest request, byte[] payload, params SafeFileDescriptor[] fds) =>
        SocketMessages.SendWithFds(fd, VhostUserMessage.EncodeRequest(request, payload), fds);

    private static byte[] VringState(uint index, uint num)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(b, index);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), num);
        return b;
    }

    /// <summary>What QEMU sends before the guest driver runs: one memory region (a file standing in for the memfd), then ring <paramref name="queue"/>'s size and addresses.</summary>
    private void StartRing(SafeFileDescriptor fd, uint queue)
    {
        string file = Path.Combine(TempDir(), "guest-ram");
        using (var f = File.Create(file)) f.SetLength((long)MemorySize);
        using var ram = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
        var table = new byte[8 + 32];
        BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(8), 0);          // guest_addr
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(16), MemorySize); // size
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(24), UserBase);   // user_addr
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(32), 0);          // mmap_offset
        using var ramFd = new SafeFileDescriptor((int)ram.DangerousGetHandle(), ownsHandle: false);
        Send(fd, VhostUserRequest.SetMemTable, table, ramFd);
        Send(fd, VhostUserRequest.SetVringNum, VringState(queue, 16));
        var addr = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(addr, queue);
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(8), UserBase);            // desc
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(16), UserBase + 0x2000);  // used
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(24), UserBase + 0x1000);  // avail
        Send(fd, VhostUserRequest.SetVringAddr, addr);
    }

    [Fact]
    public async Task AnswersFeatureAndConfigQueriesAndCompletesWhenClosedBeforeAnyRingStarted()
    {
        var options = Options(cid: 42);
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using (var fd = UnixSockets.Connect(options.VhostUserSocketPath))
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
        await backend.Completion.WaitAsync(Timeout);
        Assert.True(backend.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ClosingWhileARingRunsFaultsCompletionWithTheReason()
    {
        var options = Options();
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using (var fd = UnixSockets.Connect(options.VhostUserSocketPath))
        {
            StartRing(fd, VsockDevice.TxQueue);
            Call(fd, VhostUserRequest.GetFeatures, []); // a round trip: every message before it was handled
        }
        var e = await Assert.ThrowsAsync<MicroagentException>(() => backend.Completion.WaitAsync(Timeout));
        Assert.Contains("queue tx was running", e.Message);
        Assert.Contains("GET_VRING_BASE", e.Message);
    }

    [Fact]
    public async Task ClosingAfterGetVringBaseCompletesNormally()
    {
        var options = Options();
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using (var fd = UnixSockets.Connect(options.VhostUserSocketPath))
        {
            StartRing(fd, VsockDevice.RxQueue);
            var reply = Call(fd, VhostUserRequest.GetVringBase, VringState(VsockDevice.RxQueue, 0));
            Assert.Equal((uint)VsockDevice.RxQueue, BinaryPrimitives.ReadUInt32LittleEndian(reply));
        }
        await backend.Completion.WaitAsync(Timeout);
        Assert.True(backend.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ProtocolViolationFaultsCompletion()
    {
        var options = Options();
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using var fd = UnixSockets.Connect(options.VhostUserSocketPath);
        SocketMessages.SendAll(fd, VhostUserMessage.EncodeRequest(VhostUserRequest.SetVringNum, VringState(7, 16))); // queue 7 does not exist
        var e = await Assert.ThrowsAsync<MicroagentException>(() => backend.Completion.WaitAsync(Timeout));
        Assert.Contains("queue index 7", e.Message);
    }

    [Fact]
    public async Task MalformedHeaderFaultsCompletion()
    {
        var options = Options();
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using var fd = UnixSockets.Connect(options.VhostUserSocketPath);
        var bytes = new byte[VhostUserHeader.Length];
        new VhostUserHeader(VhostUserRequest.GetFeatures, 0x2, 0).Write(bytes); // version 2
        SocketMessages.SendAll(fd, bytes);
        var e = await Assert.ThrowsAsync<MicroagentException>(() => backend.Completion.WaitAsync(Timeout));
        Assert.Contains("bad message header", e.Message);
    }

    [Fact]
    public async Task FailingQueueWorkerFaultsCompletion()
    {
        var options = Options();
        await using var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using var fd = UnixSockets.Connect(options.VhostUserSocketPath);
        var (read, write) = FileDescriptors.Pipe();
        write.Dispose(); // the "eventfd" reads end of file at once: its kick worker fails
        using (read)
        {
            var kick = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(kick, VsockDevice.TxQueue);
            Send(fd, VhostUserRequest.SetVringKick, kick, read);
        }
        var e = await Assert.ThrowsAsync<MicroagentException>(() => backend.Completion.WaitAsync(Timeout));
        Assert.Contains("kick descriptor of queue 1 failed", e.Message);
    }

    [Fact]
    public async Task AcceptReconnectServesANewSessionAfterAnOrderlyEnd()
    {
        var options = Options(cid: 7, reconnect: true);
        var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using (var first = UnixSockets.Connect(options.VhostUserSocketPath))
        {
            StartRing(first, VsockDevice.TxQueue);
            Call(first, VhostUserRequest.GetVringBase, VringState(VsockDevice.TxQueue, 0));
        }
        using (var second = UnixSockets.Connect(options.VhostUserSocketPath)) // the listener accepts again
        {
            var config = new byte[12 + 8];
            BinaryPrimitives.WriteUInt32LittleEndian(config.AsSpan(4), 8);
            Assert.Equal(7UL, BinaryPrimitives.ReadUInt64LittleEndian(Call(second, VhostUserRequest.GetConfig, config).AsSpan(12)));
            Assert.False(backend.Completion.IsCompleted);
            Assert.True(File.Exists(options.HybridSocketPath));
        }
        await backend.DisposeAsync().AsTask().WaitAsync(Timeout);
        Assert.True(backend.Completion.IsCompletedSuccessfully);
        Assert.False(File.Exists(options.VhostUserSocketPath));
    }

    [Fact]
    public async Task DisposeDuringASessionCompletesNormally()
    {
        var options = Options();
        var backend = new VhostUserVsockBackend(options);
        backend.Start();
        using var fd = UnixSockets.Connect(options.VhostUserSocketPath);
        StartRing(fd, VsockDevice.RxQueue);
        Call(fd, VhostUserRequest.GetFeatures, []);
        await backend.DisposeAsync().AsTask().WaitAsync(Timeout);
        Assert.True(backend.Completion.IsCompletedSuccessfully);
        Assert.Equal(0, SocketMessages.Receive(fd, new byte[1], null, out _)); // the backend closed its end
    }

    [Fact]
    public async Task DisposeWithoutFrontEndUnlinksSocketsAndRefusesHybridClients()
    {
        var options = Options();
        var backend = new VhostUserVsockBackend(options);
        backend.Start();
        Assert.True(File.Exists(options.HybridSocketPath));
        await backend.DisposeAsync().AsTask().WaitAsync(Timeout);
        Assert.True(backend.Completion.IsCompletedSuccessfully);
        Assert.False(File.Exists(options.VhostUserSocketPath));
        Assert.False(File.Exists(options.HybridSocketPath));
        var e = await Assert.ThrowsAsync<MicroagentException>(() => HybridVsock.ConnectAsync(options.HybridSocketPath, 5000));
        Assert.True(e.Retryable);
    }
}
