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
}
