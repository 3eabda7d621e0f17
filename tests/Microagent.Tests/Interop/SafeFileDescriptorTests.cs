using System.Net.Sockets;
using Microagent.Interop;

namespace Microagent.Tests.Interop;

/// <summary>Descriptor numbers are process-wide: these tests run alone so that no other test takes a number they just freed.</summary>
[CollectionDefinition(nameof(SafeFileDescriptorTests), DisableParallelization = true)]
public sealed class DescriptorNumbersCollection;

[Collection(nameof(SafeFileDescriptorTests))]
public sealed class SafeFileDescriptorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ma-fd-" + Guid.NewGuid().ToString("N")[..8]);

    public SafeFileDescriptorTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void OnlyMinusOneIsInvalid()
    {
        using var zero = new SafeFileDescriptor(0, ownsHandle: false);
        using var none = new SafeFileDescriptor();
        using var minusOne = new SafeFileDescriptor(-1);
        Assert.False(zero.IsInvalid);
        Assert.True(none.IsInvalid);
        Assert.True(minusOne.IsInvalid);
        Assert.Equal(-1, none.DangerousFd);
    }

    [Fact]
    public void DisposingClosesTheDescriptorExactlyOnce()
    {
        var (read, write) = FileDescriptors.Pipe();
        using var _ = write;
        int number = read.DangerousFd;
        Assert.True(FileDescriptors.IsOpen(number));
        read.Dispose();
        Assert.False(FileDescriptors.IsOpen(number));

        // The kernel hands the lowest free number out again; a second Dispose must not close the new owner's descriptor.
        var held = new List<SafeFileDescriptor>();
        try
        {
            while (held.Count < 256 && !held.Any(h => h.DangerousFd == number))
            {
                var (r, w) = FileDescriptors.Pipe();
                held.Add(r);
                held.Add(w);
            }
            Assert.Contains(held, h => h.DangerousFd == number);
            read.Dispose();
            Assert.True(FileDescriptors.IsOpen(number));
        }
        finally
        {
            foreach (var h in held) h.Dispose();
        }
    }

    [Fact]
    public void AHandleThatDoesNotOwnItsDescriptorLeavesItOpen()
    {
        var (read, write) = FileDescriptors.Pipe();
        using (read)
        using (write)
        {
            new SafeFileDescriptor(read.DangerousFd, ownsHandle: false).Dispose();
            Assert.True(FileDescriptors.IsOpen(read.DangerousFd));
        }
    }

    [Fact]
    public void CallsOnADisposedHandleThrowInsteadOfTouchingTheNumber()
    {
        var (read, write) = FileDescriptors.Pipe();
        write.Dispose();
        read.Dispose();
        Assert.Throws<ObjectDisposedException>(() => FileDescriptors.Read(read, new byte[1]));
        Assert.False(EventFd.TrySignal(write));
    }

    [Fact]
    public void DescriptorsReceivedWithScmRightsAreOwnedHandles()
    {
        string path = Path.Combine(_dir, "s");
        using var listener = UnixSockets.Listen(path, 1);
        using var client = UnixSockets.Connect(path);
        using var server = UnixSockets.Accept(listener);
        var (read, write) = FileDescriptors.Pipe();
        using (read)
        {
            using (write) SocketMessages.SendWithFds(client, [42], [write]);
            var received = new List<SafeFileDescriptor>();
            var one = new byte[1];
            Assert.Equal(1, SocketMessages.Receive(server, one, received, out bool truncated));
            Assert.False(truncated);
            Assert.Equal(42, one[0]);
            var copy = Assert.Single(received);
            FileDescriptors.WriteAll(copy, [7]);
            int number = copy.DangerousFd;
            copy.Dispose();
            Assert.False(FileDescriptors.IsOpen(number));
            Assert.Equal(1, FileDescriptors.Read(read, one));
            Assert.Equal(7, one[0]);
            Assert.Equal(0, FileDescriptors.Read(read, one)); // every write end is closed
        }
    }

    [Fact]
    public void DescriptorsNobodyAskedForAreClosedAndReportedAsTruncated()
    {
        string path = Path.Combine(_dir, "s");
        using var listener = UnixSockets.Listen(path, 1);
        using var client = UnixSockets.Connect(path);
        using var server = UnixSockets.Accept(listener);
        var (read, write) = FileDescriptors.Pipe();
        using (read)
        {
            using (write) SocketMessages.SendWithFds(client, [1], [write]);
            Assert.Equal(1, SocketMessages.Receive(server, new byte[1], null, out bool truncated));
            Assert.True(truncated);
            Assert.Equal(0, FileDescriptors.Read(read, new byte[1])); // the only write end left was the received one
        }
    }

    [Fact]
    public async Task AdoptMovesOwnershipToTheSocket()
    {
        string path = Path.Combine(_dir, "s");
        using var listener = UnixSockets.Listen(path, 1);
        var fd = UnixSockets.Connect(path);
        using var server = UnixSockets.Accept(listener);
        int number = fd.DangerousFd;
        using (var socket = Sockets.Adopt(fd))
        {
            Assert.True(fd.IsInvalid || fd.IsClosed);
            fd.Dispose(); // a no-op now
            Assert.True(FileDescriptors.IsOpen(number));
            await socket.SendAsync(new byte[] { 9 }, SocketFlags.None);
        }
        Assert.False(FileDescriptors.IsOpen(number));
        var b = new byte[1];
        Assert.Equal(1, FileDescriptors.Read(server, b));
        Assert.Equal(9, b[0]);
    }
}
