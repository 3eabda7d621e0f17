using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Microagent.EndToEnd.Tests.Images;

/// <summary>
/// A real OCI registry (Debian package docker-registry) on a free 127.0.0.1 port with a temporary
/// storage directory, optionally behind htpasswd (bcrypt) basic auth. Killed by pid on dispose.
/// </summary>
public sealed class LocalRegistry : IDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    public LocalRegistry(string? user = null, string? password = null)
    {
        _dir = Directory.CreateTempSubdirectory("ma-registry-").FullName;
        int port = FreePort();
        Address = $"127.0.0.1:{port}";
        string auth = "";
        if (user is not null)
        {
            string htpasswd = Path.Combine(_dir, "htpasswd");
            File.WriteAllText(htpasswd, Tools.Run("htpasswd", "-Bbn", user, password!).Trim() + "\n");
            auth = $"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n";
        }
        string config = Path.Combine(_dir, "config.yml");
        File.WriteAllText(config, $"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {_dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: {Address}\n{auth}");
        var psi = new ProcessStartInfo("/usr/bin/docker-registry") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try { using var c = new TcpClient(); c.Connect(IPAddress.Loopback, port); break; }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited) { Thread.Sleep(100); }
        }
    }

    public string Address { get; }

    /// <summary>Pushes an OCI layout (all manifests of an index with <paramref name="all"/>) with skopeo.</summary>
    public void Push(string ociRef, string repoTag, string? creds = null, bool all = false)
    {
        var args = new List<string> { "copy", "-q", "--dest-tls-verify=false" };
        if (all) args.Add("--all");
        if (creds is not null) { args.Add("--dest-creds"); args.Add(creds); }
        args.Add(ociRef);
        args.Add($"docker://{Address}/{repoTag}");
        Tools.Run("skopeo", [.. args]);
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try { _process.Kill(); _process.WaitForExit(5000); } catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

internal static class Tools
{
    public static string Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Result}");
        return o;
    }
}
