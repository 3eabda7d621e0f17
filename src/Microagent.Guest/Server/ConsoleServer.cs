using System.Diagnostics;
using Microagent.Guest.Exec;
using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Server;

/// <summary>
/// Serves console sessions on <see cref="ConsoleInfo.Port"/> (docs/ARCHITECTURE.md "Console"; the framing is in
/// Protocol/Console.cs): one shell on a pseudo-terminal per connection. The terminal's output is pumped to the host on a
/// dedicated thread; the host's input and resizes are applied as they come. Invariants: nothing a peer sends can throw out
/// of <see cref="HandleAsync"/> (the agent is PID 1); a host that goes away hangs the shell up; a shell that exits is
/// reported by one <c>result</c> frame after its output, and the connection is closed.
/// </summary>
internal sealed class ConsoleServer(IChildWaiter waiter, string etc = "/etc")
{
    private static readonly long IdleAfterExitTicks = Stopwatch.Frequency / 5;      // 200 ms
    private static readonly long MaxAfterExitTicks = Stopwatch.Frequency * 5;        // 5 s

    /// <summary>Serves one console session on <paramref name="connection"/>, then disposes it.</summary>
    public async Task HandleAsync(Stream connection)
    {
        try
        {
            await using (connection.ConfigureAwait(false)) await ServeAsync(connection).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.Error($"console: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task ServeAsync(Stream connection)
    {
        Request? request;
        try { request = await Frame.ReadAsync(connection, ProtocolJson.Default.Request).ConfigureAwait(false); }
        catch (ProtocolException e)
        {
            await SendErrorAsync(connection, "invalid", e.Message).ConfigureAwait(false);
            return;
        }
        if (request is null) return;
        if (Check(request) is { } problem)
        {
            await SendErrorAsync(connection, problem.Kind, problem.Message).ConfigureAwait(false);
            return;
        }
        TerminalShell shell;
        try { shell = TerminalShell.Start(request.Console!, waiter, etc); }
        catch (Exception e) when (e is ExecStartException or SyscallException)
        {
            await SendErrorAsync(connection, "permanent", e.Message).ConfigureAwait(false);
            return;
        }
        using (shell)
        {
            var clock = Stopwatch.StartNew();
            await Frame.WriteAsync(connection, new Response { Type = ResponseTypes.Ok }, ProtocolJson.Default.Response).ConfigureAwait(false);
            Log.Info($"console: {shell.Path} (pid {shell.Pid}) on a {request.Console!.Rows}x{request.Console.Cols} terminal");

            using var hostGone = new CancellationTokenSource();
            long exitedAt = 0;
            var pump = new Thread(() => Pump(shell, connection, () => Interlocked.Read(ref exitedAt), hostGone), 256 * 1024)
                { IsBackground = true, Name = "console-output" };
            pump.Start();
            Task input = ReadInputAsync(connection, shell, hostGone);

            Task ended = await Task.WhenAny(shell.Exit, Task.Delay(Timeout.Infinite, hostGone.Token)).ConfigureAwait(false);
            if (ended != shell.Exit)
            {
                Log.Info($"console: the host closed the session; hanging up pid {shell.Pid}");
                shell.HangUp();
                await shell.Exit.ConfigureAwait(false);
                return;
            }
            Interlocked.Exchange(ref exitedAt, Stopwatch.GetTimestamp());
            await Task.Run(pump.Join).ConfigureAwait(false);
            if (hostGone.IsCancellationRequested) return;
            var result = TerminalShell.ResultOf(await shell.Exit.ConfigureAwait(false), clock.ElapsedMilliseconds);
            await Frame.WriteAsync(connection, new Response { Type = ResponseTypes.Result, Result = result }, ProtocolJson.Default.Response).ConfigureAwait(false);
            _ = input;
        }
    }

    /// <summary>Why <paramref name="request"/> cannot open a session (kind, message); null when it can.</summary>
    internal static (string Kind, string Message)? Check(Request request)
    {
        if (request.Version != ProtocolInfo.Version)
            return ("unsupported", $"protocol version {request.Version} (agent speaks {ProtocolInfo.Version})");
        if (request.Type != ConsoleRequestTypes.Console)
            return ("invalid", $"port {ConsoleInfo.Port} serves console sessions only (got '{request.Type}')");
        if (request.Console is not { } c) return ("invalid", "console needs its terminal (rows, cols)");
        if (!ConsoleInfo.IsValidSize(c.Rows, c.Cols)) return ("invalid", $"terminal size {c.Rows}x{c.Cols} is outside 1..{ConsoleInfo.MaxDimension}");
        if (c.Term is { } t && (t.Length > ConsoleInfo.MaxTermLength || t.Any(ch => ch is < '!' or > '~')))
            return ("invalid", $"TERM must be 1 to {ConsoleInfo.MaxTermLength} printable ASCII characters");
        if ((c.Env ?? []).Append(c.Shell ?? "").Append(c.Cwd ?? "").Append(c.User ?? "").Any(s => s.Contains('\0')))
            return ("invalid", "shell, env, cwd and user must not contain NUL");
        return null;
    }

    /// <summary>Applies the host's frames (input, resizes) until the connection ends, which fires <paramref name="hostGone"/>.</summary>
    private static async Task ReadInputAsync(Stream connection, TerminalShell shell, CancellationTokenSource hostGone)
    {
        try
        {
            while (true)
            {
                Request? frame = await Frame.ReadAsync(connection, ProtocolJson.Default.Request).ConfigureAwait(false);
                if (frame is null) break;
                switch (frame.Type)
                {
                    case RequestTypes.Stdin when frame.Data is { Length: > 0 } data:
                        try { shell.Write(data); }
                        catch (SyscallException) { } // EIO: the terminal is gone (the shell ended); its result follows
                        break;
                    case ConsoleRequestTypes.Resize when frame.Console is { } size && ConsoleInfo.IsValidSize(size.Rows, size.Cols):
                        try { shell.Resize(size.Rows, size.Cols); }
                        catch (SyscallException) { }
                        break;
                    default:
                        Log.Error($"console: ignored a '{frame.Type}' frame");
                        break;
                }
            }
        }
        catch (Exception)
        {
            // Reset, closed under us after the result, or garbage: the host is not listening any more.
        }
        try { hostGone.Cancel(); }
        catch (ObjectDisposedException) { } // the session had ended already
    }

    /// <summary>
    /// Forwards the terminal's output until it hangs up (EIO once every slave descriptor is closed), the host goes away, or —
    /// after the shell exited (<paramref name="exitedAt"/> non-zero) — the terminal stays quiet for 200 ms (a background
    /// process may keep it open) or 5 s pass.
    /// </summary>
    private static void Pump(TerminalShell shell, Stream connection, Func<long> exitedAt, CancellationTokenSource hostGone)
    {
        var buffer = new byte[OutputPump.ChunkBytes];
        Span<short> revents = stackalloc short[1];
        SafeFileDescriptor?[] fds = [shell.Master];
        try
        {
            while (!hostGone.IsCancellationRequested)
            {
                long exited = exitedAt();
                int ready = Poll.WaitReadable(fds, revents, exited == 0 ? 250 : 50);
                long now = Stopwatch.GetTimestamp();
                if (ready == 0)
                {
                    if (exited != 0 && now - exited > IdleAfterExitTicks) return;
                    continue;
                }
                if (exited != 0 && now - exited > MaxAfterExitTicks) return;
                int n;
                try { n = FileDescriptors.Read(shell.Master, buffer); }
                catch (SyscallException) { return; } // EIO: hung up
                if (n == 0) return;
                var chunk = new Response { Type = ResponseTypes.Stdout, Data = buffer.AsSpan(0, n).ToArray() };
                Frame.WriteAsync(connection, chunk, ProtocolJson.Default.Response).GetAwaiter().GetResult();
            }
        }
        catch (Exception)
        {
            try { hostGone.Cancel(); } catch (ObjectDisposedException) { }
        }
    }

    private static Task SendErrorAsync(Stream connection, string kind, string message) =>
        Frame.WriteAsync(connection, new Response { Type = ResponseTypes.Error, Error = new ProtocolError { Kind = kind, Message = message } }, ProtocolJson.Default.Response);
}
