using System.Net.Sockets;
using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>Client of a supervisor's control socket.</summary>
internal static class ControlClient
{
    public static async Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token).ConfigureAwait(false); }
        catch (SocketException e)
        {
            socket.Dispose();
            throw MicroagentException.Transient($"the supervisor does not answer on {socketPath}: {e.Message}", null, e);
        }
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        await Frame.WriteAsync(stream, request, WorkspaceJsonLine.Default.ControlRequest, timeout.Token).ConfigureAwait(false);
        return await Frame.ReadAsync(stream, WorkspaceJsonLine.Default.ControlResponse, timeout.Token).ConfigureAwait(false)
            ?? throw MicroagentException.Transient("the supervisor closed the control connection without answering");
    }
}
