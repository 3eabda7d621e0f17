using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class WorkspaceStoreTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    [Fact]
    public void Transitions_are_checked_written_0600_and_appended_as_events()
    {
        var store = new WorkspaceStore(new StatePaths(_root), "w");
        StatePaths.EnsureDirectory(store.Dir);
        store.Initialize("created");
        store.Transition(WorkspaceState.Starting, "start", r => r with { SupervisorPid = 42 });
        Assert.Throws<WorkspaceStateException>(() => store.Transition(WorkspaceState.Halted, "nope"));
        store.Transition(WorkspaceState.Failed, "boom");
        var state = store.ReadState();
        Assert.Equal(WorkspaceState.Failed, state.State);
        Assert.Equal(WorkspaceState.Starting, state.Previous);
        Assert.Null(state.SupervisorPid); // cleared when no longer active
        var events = store.ReadEvents(0, out long end);
        Assert.Equal([WorkspaceState.Prepared, WorkspaceState.Starting, WorkspaceState.Failed], events.Select(e => e.State));
        Assert.Equal("boom", events[^1].Detail);
        Assert.Empty(store.ReadEvents(end, out _));
        Assert.Contains("\"state\":\"failed\"", File.ReadAllLines(store.EventsPath)[^1]);
        foreach (string f in new[] { store.StatePath, store.EventsPath })
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(store.Dir));
    }

    [Fact]
    public void Archives_round_trip_with_modes_and_links()
    {
        string src = Path.Combine(_root, "src");
        Directory.CreateDirectory(Path.Combine(src, "sub"));
        File.WriteAllText(Path.Combine(src, "x.sh"), "echo");
        File.SetUnixFileMode(Path.Combine(src, "x.sh"), (UnixFileMode)0b111_101_000);
        File.WriteAllText(Path.Combine(src, "sub", "y"), "yy");
        File.CreateSymbolicLink(Path.Combine(src, "link"), "x.sh");
        var ms = new MemoryStream();
        var (entries, bytes) = WorkspaceCopy.WriteArchive(src, ms);
        Assert.Equal(5, entries);
        Assert.Equal(6, bytes);
        ms.Position = 0;
        string dest = Path.Combine(_root, "dest");
        var (target, n, _) = WorkspaceCopy.ExtractArchive(ms, WorkspaceCopy.Staged, dest);
        Assert.Equal(dest, target);
        Assert.Equal(5, n);
        Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(Path.Combine(dest, "x.sh")));
        Assert.Equal("x.sh", new FileInfo(Path.Combine(dest, "link")).LinkTarget);
        Assert.Equal("yy", File.ReadAllText(Path.Combine(dest, "sub", "y")));
    }

    [Fact]
    public void Archives_that_escape_are_refused()
    {
        var ms = new MemoryStream();
        using (var w = new System.Formats.Tar.TarWriter(ms, leaveOpen: true))
        {
            var e = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "payload/../../evil");
            w.WriteEntry(e);
        }
        ms.Position = 0;
        Directory.CreateDirectory(_root);
        Assert.Throws<WorkspaceCopyException>(() => WorkspaceCopy.ExtractArchive(ms, "payload", Path.Combine(_root, "d")));
    }

    [Fact]
    public async Task Vsock_proxy_relays_to_tcp_with_half_close()
    {
        Directory.CreateDirectory(_root);
        using var tcp = new TcpListener(IPAddress.Loopback, 0);
        tcp.Start();
        int port = ((IPEndPoint)tcp.LocalEndpoint).Port;
        string hybrid = Path.Combine(_root, "v.sock");
        int activity = 0;
        await using var proxy = new VsockTcpProxy(hybrid, new VsockMapping(5000, "127.0.0.1", port), () => Interlocked.Increment(ref activity), _ => { });

        var server = Task.Run(async () =>
        {
            using var c = await tcp.AcceptTcpClientAsync();
            var s = c.GetStream();
            var got = new MemoryStream();
            await s.CopyToAsync(got); // until the guest half-closes
            await s.WriteAsync(Encoding.ASCII.GetBytes("echo:" + Encoding.ASCII.GetString(got.ToArray())));
            c.Client.Shutdown(SocketShutdown.Send);
        });
        using var guest = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await guest.ConnectAsync(new UnixDomainSocketEndPoint(hybrid + "_5000"));
        await guest.SendAsync("ping"u8.ToArray());
        guest.Shutdown(SocketShutdown.Send);
        var reply = new MemoryStream();
        var buf = new byte[256];
        int n;
        while ((n = await guest.ReceiveAsync(buf)) > 0) reply.Write(buf, 0, n);
        await server;
        Assert.Equal("echo:ping", Encoding.ASCII.GetString(reply.ToArray()));
        Assert.True(activity > 0);
    }
}
