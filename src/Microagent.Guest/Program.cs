using System.Diagnostics;
using Microagent.Guest;
using Microagent.Guest.Exec;
using Microagent.Guest.Init;
using Microagent.Guest.Server;
using Microagent.Interop;
using Microagent.Protocol;

// microagent-agent: PID 1 of a workspace VM, or `--listen-unix PATH` (dev mode) on a host.
var clock = Stopwatch.StartNew();
if (args is ["--listen-unix", string path])
    return await DevMode.RunAsync(path).ConfigureAwait(false);
if (Environment.ProcessId != 1)
{
    Console.Error.WriteLine("usage: microagent-agent --listen-unix PATH   (or run as PID 1 inside a workspace VM)");
    return 2;
}
GuestInit.Run(clock);
return 0;

namespace Microagent.Guest
{
    /// <summary>Dev mode: the same protocol on a unix socket, no init steps; reaps its descendants as a subreaper.</summary>
    internal static class DevMode
    {
        public static async Task<int> RunAsync(string path)
        {
            Wait.SetChildSubreaper();
            var reaper = new ReapAllWaiter().StartReaper();
            using var stop = new CancellationTokenSource();
            var server = new AgentServer(new ExecEngine(reaper), () => stop.Cancel());
            await Listeners.ServeUnixAsync(path, server, stop.Token).ConfigureAwait(false);
            Log.Info("shutdown requested; exiting");
            return 0;
        }
    }

    /// <summary>PID 1: init sequence, reaper, vsock server, hello. Never returns; a fatal failure powers off.</summary>
    internal static class GuestInit
    {
        public static void Run(Stopwatch clock)
        {
            KernelCmdline cmdline;
            try
            {
                cmdline = InitSequence.Run();
                foreach (string e in ExecEngine.DefaultEnvironment)
                {
                    int eq = e.IndexOf('=');
                    Environment.SetEnvironmentVariable(e[..eq], e[(eq + 1)..]);
                }
            }
            catch (Exception e)
            {
                Fatal($"init failed: {e.Message}");
                return;
            }
            var reaper = new ReapAllWaiter().StartReaper();
            var engine = new ExecEngine(reaper);
            Log.Info($"root switched in {clock.ElapsedMilliseconds} ms");

            var server = new AgentServer(engine, () => new Thread(PowerOff.Graceful) { Name = "shutdown" }.Start());
            try { Listeners.StartVsock(ProtocolInfo.AgentPort, server); }
            catch (Exception e)
            {
                Fatal($"cannot listen on vsock port {ProtocolInfo.AgentPort}: {e.Message} (is the vsock device present and its modules listed in {InitSequence.ModulesList}?)");
                return;
            }
            // Console sessions have a port of their own, so the host can sever them all by port (docs/ARCHITECTURE.md "Console").
            try { Listeners.StartVsock(ConsoleInfo.Port, new ConsoleServer(reaper).HandleAsync); }
            catch (Exception e) { Log.Error($"cannot listen on vsock port {ConsoleInfo.Port}: {e.Message}; no console"); }
            if (cmdline.SelfTest) SelfTest(engine, clock);
            if (cmdline.PreloadNetworkModules) PreloadNetworkModules(clock);
            Ready.Announce(Ready.BuildHello(clock.ElapsedMilliseconds));
            Thread.Sleep(Timeout.Infinite);
        }

        /// <summary>
        /// A template capture's boot (<c>microagent.netmodules=preload</c>) loads the <c>user</c> network's modules before the
        /// hello, so the template holds them and a warm start's network setup only adds the link, addresses and rules
        /// (docs/ARCHITECTURE.md "Warm start"). Loaded modules without rules change nothing; a failure is logged and left to
        /// the network setup, which loads them again and reports it.
        /// </summary>
        private static void PreloadNetworkModules(Stopwatch clock)
        {
            long start = clock.ElapsedMilliseconds;
            try { Network.NetworkModules.LoadAll(); Log.Info($"network modules preloaded in {clock.ElapsedMilliseconds - start} ms"); }
            catch (IOException e) { Log.Error($"network modules not preloaded: {e.Message}"); }
        }

        private static void SelfTest(ExecEngine engine, Stopwatch clock)
        {
            Log.Info($"selftest: agent init {clock.ElapsedMilliseconds} ms, uptime {Ready.UptimeMs()} ms");
            var request = new ExecRequest { Argv = ["/bin/sh", "-c", "uname -a; id; hostname; cat /proc/mounts | wc -l; echo err >&2; exit 3"], TimeoutMs = 10_000 };
            var sw = Stopwatch.StartNew();
            ExecResult r = engine.RunAsync(request).GetAwaiter().GetResult();
            Log.Info($"selftest: status={r.Status} exitCode={r.ExitCode} in {sw.ElapsedMilliseconds} ms error={r.Error}");
            Log.Info($"selftest stdout: {System.Text.Encoding.UTF8.GetString(r.Stdout ?? [])}");
            Log.Info($"selftest stderr: {System.Text.Encoding.UTF8.GetString(r.Stderr ?? [])}");
            ExecResult nobody = engine.RunAsync(new ExecRequest { Argv = ["id"], User = "nobody" }).GetAwaiter().GetResult();
            Log.Info($"selftest user: {nobody.Status} {System.Text.Encoding.UTF8.GetString(nobody.Stdout ?? []).Trim()} {nobody.Error}");
            if (Directory.Exists("/sys/module/vsock_loopback")) SelfTestLoopback();
            PowerOff.Graceful();
        }

        // Through the real vsock listener and server, over the vsock_loopback transport (CID 1).
        private static void SelfTestLoopback()
        {
            try
            {
                var sw = Stopwatch.StartNew();
                async Task<Response> CallAsync(Request request)
                {
                    await using Stream s = Listeners.WrapConnected(Vsock.Connect(1, ProtocolInfo.AgentPort));
                    await Frame.WriteAsync(s, request, ProtocolJson.Default.Request).ConfigureAwait(false);
                    return (await Frame.ReadAsync(s, ProtocolJson.Default.Response).ConfigureAwait(false))!;
                }
                Response Call(Request request) => CallAsync(request).GetAwaiter().GetResult();
                Log.Info($"selftest vsock: ping -> {Call(new Request { Type = RequestTypes.Ping }).Type}");
                ExecResult r = Call(new Request { Type = RequestTypes.Exec, Exec = new ExecRequest { Argv = ["cat", "/proc/uptime"] } }).Result!;
                Log.Info($"selftest vsock: exec -> {r.Status} {r.ExitCode} {System.Text.Encoding.UTF8.GetString(r.Stdout ?? []).Trim()} ({sw.ElapsedMilliseconds} ms)");
                sw.Restart();
                Task<Response>[] parallel = Enumerable.Range(0, 100).Select(i =>
                    CallAsync(new Request { Type = RequestTypes.Exec, Exec = new ExecRequest { Argv = ["sh", "-c", $"echo {i}"] } })).ToArray();
                Task.WaitAll(parallel);
                int ok = parallel.Count(t => t.Result.Result?.Status == ExecStatuses.Exited);
                Log.Info($"selftest vsock: 100 parallel execs, {ok} ok ({sw.ElapsedMilliseconds} ms)");
                Call(new Request { Type = RequestTypes.Exec, Exec = new ExecRequest { Argv = ["sh", "-c", "trap '' TERM; sleep 1000 >/dev/null 2>&1 &"] } });
                Log.Info($"selftest vsock: shutdown -> {Call(new Request { Type = RequestTypes.Shutdown }).Type}");
                Thread.Sleep(Timeout.Infinite); // the shutdown request powers off
            }
            catch (Exception e) { Log.Error($"selftest vsock: {e}"); }
        }

        private static void Fatal(string message)
        {
            Log.Error(message);
            PowerOff.Now();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
