using System.Net;
using System.Net.Sockets;
using Microagent.Guest.Network;
using Microagent.Protocol;

namespace Microagent.Guest.Server;

/// <summary>The agent's network requests (<c>network</c>, <c>forward</c>, <c>net-stats</c>; Microagent.Protocol/Network.cs).</summary>
internal static class NetworkRequests
{
    public static async Task NetworkAsync(Stream connection, NetworkSetup? setup)
    {
        if (setup is null)
        {
            await Send(connection, Error("invalid", "network needs a network object")).ConfigureAwait(false);
            return;
        }
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await Task.Run(() => GuestNetwork.Apply(setup.Mode)).ConfigureAwait(false);
            Log.Info($"network {setup.Mode} set up in {clock.ElapsedMilliseconds} ms");
        }
        catch (ArgumentException e)
        {
            await Send(connection, Error("invalid", e.Message)).ConfigureAwait(false);
            return;
        }
        catch (NotSupportedException e)
        {
            await Send(connection, Error("unsupported", e.Message)).ConfigureAwait(false);
            return;
        }
        catch (Exception e)
        {
            Log.Error($"network {setup.Mode}: {e.Message}");
            await Send(connection, Error("permanent", $"cannot set up the {setup.Mode} network: {e.Message}")).ConfigureAwait(false);
            return;
        }
        await Send(connection, new Response { Type = ResponseTypes.Ok }).ConfigureAwait(false);
    }

    /// <summary>Starts the model forward (Microagent.Protocol/Models.cs); ok, or an error when its port is taken.</summary>
    public static async Task ModelForwardAsync(Stream connection)
    {
        try { ModelForward.Start(); }
        catch (SocketException e)
        {
            await Send(connection, Error("permanent", $"cannot listen on 127.0.0.1:{ModelInfo.GuestPort}: {e.SocketErrorCode}")).ConfigureAwait(false);
            return;
        }
        Log.Info($"model forward on 127.0.0.1:{ModelInfo.GuestPort}");
        await Send(connection, new Response { Type = ResponseTypes.Ok }).ConfigureAwait(false);
    }

    public static Task NetStatsAsync(Stream connection) =>
        Send(connection, new Response { Type = ResponseTypes.NetStats, NetStats = GuestNetwork.Stats() });

    /// <summary>Published port: connect to 127.0.0.1:PORT first (error if nothing listens), answer ok, then relay raw bytes.</summary>
    public static async Task ForwardAsync(Stream connection, int? port)
    {
        if (port is not (> 0 and < 65536))
        {
            await Send(connection, Error("invalid", "forward needs forwardPort in 1..65535")).ConfigureAwait(false);
            return;
        }
        var local = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try { await local.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port.Value)).ConfigureAwait(false); }
        catch (SocketException e)
        {
            local.Dispose();
            await Send(connection, Error("not_found", $"nothing listens on the guest's 127.0.0.1:{port} ({e.SocketErrorCode})")).ConfigureAwait(false);
            return;
        }
        Socket? host = connection switch { SocketStream s => s.Socket, NetworkStream n => n.Socket, _ => null };
        if (host is null)
        {
            local.Dispose();
            await Send(connection, Error("unsupported", "this connection cannot carry raw bytes")).ConfigureAwait(false);
            return;
        }
        await Send(connection, new Response { Type = ResponseTypes.Ok }).ConfigureAwait(false);
        await Splice.RunAsync(host, local).ConfigureAwait(false);
    }

    private static Response Error(string kind, string message) =>
        new() { Type = ResponseTypes.Error, Error = new ProtocolError { Kind = kind, Message = message } };

    private static Task Send(Stream connection, Response response) =>
        Frame.WriteAsync(connection, response, ProtocolJson.Default.Response);
}
