using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>
/// A small HTTP/1.0 server on one loopback address (127.0.0.2 = allowed.test, 127.0.0.3 = denied.test in these tests) that
/// counts every connection it accepts. <c>/hello</c> answers a line naming the server; <c>/blob</c> a fixed pseudo-random body.
/// </summary>
public sealed class LoopbackHttpServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly string _label;
    private int _connections;

    public LoopbackHttpServer(string address, string label, int blobBytes = 256 * 1024)
    {
        _label = label;
        Blob = new byte[blobBytes];
        new Random(blobBytes).NextBytes(Blob);
        BlobSha256 = Convert.ToHexStringLower(SHA256.HashData(Blob));
        _listener = new TcpListener(IPAddress.Parse(address), 0);
        _listener.Start(256);
        Address = address;
        _ = Task.Run(AcceptLoop);
    }

    public string Address { get; }
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public byte[] Blob { get; }
    public string BlobSha256 { get; }

    /// <summary>Connections accepted so far (a denied destination must see none).</summary>
    public int Connections => Volatile.Read(ref _connections);

    private async Task AcceptLoop()
    {
        while (true)
        {
            Socket s;
            try { s = await _listener.AcceptSocketAsync(); } catch (Exception) { return; }
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(s));
        }
    }

    private async Task ServeAsync(Socket s)
    {
        using (s)
        {
            try
            {
                var head = new StringBuilder();
                var buf = new byte[4096];
                while (!head.ToString().Contains("\r\n\r\n"))
                {
                    int n = await s.ReceiveAsync(buf);
                    if (n == 0) return;
                    head.Append(Encoding.ASCII.GetString(buf, 0, n));
                    if (head.Length > 64 * 1024) return;
                }
                string path = head.ToString().Split(' ')[1];
                byte[] body = path == "/blob" ? Blob : Encoding.ASCII.GetBytes($"hello from {_label}\n");
                await s.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
                await s.SendAsync(body);
                s.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException) { }
        }
    }

    public void Dispose() => _listener.Stop();
}
