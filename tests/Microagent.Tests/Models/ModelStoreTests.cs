using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microagent.Errors;
using Microagent.Models;
using Microagent.TestSupport;

namespace Microagent.Tests.Models;

/// <summary>The model store against a loopback HTTP server standing in for the Hugging Face endpoint (nothing leaves the host).</summary>
public sealed class ModelStoreTests : IDisposable
{
    private const string Token = "hf_secret_test_token";
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-models-").FullName;
    private readonly byte[] _gguf;
    private readonly HttpListener _http = new();
    private readonly string _endpoint;
    private readonly List<string?> _authorizations = [];
    private string? _etag;

    public ModelStoreTests()
    {
        string file = Path.Combine(_dir, "tiny.gguf");
        TinyGguf.Write(file);
        _gguf = File.ReadAllBytes(file);
        int port = FreePort();
        _endpoint = $"http://127.0.0.1:{port}";
        _http.Prefixes.Add(_endpoint + "/");
        _http.Start();
        _ = Task.Run(ServeAsync);
    }

    public void Dispose()
    {
        _http.Close();
        Directory.Delete(_dir, true);
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private async Task ServeAsync()
    {
        while (_http.IsListening)
        {
            HttpListenerContext c;
            try { c = await _http.GetContextAsync(); } catch (Exception) { return; }
            string? auth = c.Request.Headers["Authorization"];
            lock (_authorizations) _authorizations.Add(auth);
            string path = c.Request.Url!.AbsolutePath;
            if (path == "/org/private/resolve/main/tiny.gguf" && auth != $"Bearer {Token}") c.Response.StatusCode = 401;
            else if (path.EndsWith("/resolve/main/tiny.gguf", StringComparison.Ordinal))
            {
                if (_etag is not null) c.Response.Headers["X-Linked-ETag"] = $"\"{_etag}\"";
                await c.Response.OutputStream.WriteAsync(_gguf);
            }
            else if (path.EndsWith("/resolve/main/notgguf.gguf", StringComparison.Ordinal)) await c.Response.OutputStream.WriteAsync("<html>nope</html>"u8.ToArray());
            else c.Response.StatusCode = 404;
            c.Response.Close();
        }
    }

    private ModelStore Store => new(new StatePaths(_dir));
    private ModelPullOptions Options(string? token = null) => new() { Endpoint = _endpoint, Token = token };

    [Fact]
    public async Task A_pull_streams_hashes_renames_and_indexes_the_model()
    {
        var m = await Store.PullAsync("hf.co/org/public/tiny.gguf", Options());
        string sha = Convert.ToHexString(SHA256.HashData(_gguf)).ToLowerInvariant();
        Assert.Equal("sha256:" + sha, m.Sha256);
        Assert.Equal(_gguf.Length, m.Size);
        Assert.Equal(_gguf, File.ReadAllBytes(m.Path));
        Assert.Equal($"{_endpoint}/org/public/resolve/main/tiny.gguf", m.ResolvedRef);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(m.Path));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(m.Path)!, ".partial-*"));
        Assert.Equal(m, Store.Find("org/public/tiny.gguf"));
        Assert.Equal(m, Store.Find(sha[..12]));
        // Present: no second download.
        int before = _authorizations.Count;
        Assert.Equal(m.Path, (await Store.PullAsync("org/public/tiny.gguf", Options())).Path);
        Assert.Equal(before, _authorizations.Count);
    }

    [Fact]
    public async Task The_token_is_sent_as_a_bearer_and_never_stored()
    {
        var denied = await Assert.ThrowsAsync<MicroagentException>(() => Store.PullAsync("org/private/tiny.gguf", Options()));
        Assert.Equal(ErrorKind.PolicyDenied, denied.Kind);
        var m = await Store.PullAsync("org/private/tiny.gguf", Options(Token));
        Assert.Contains($"Bearer {Token}", _authorizations);
        foreach (string f in Directory.EnumerateFiles(Path.Combine(_dir, "models"), "*", SearchOption.AllDirectories).Where(f => f != m.Path))
            Assert.DoesNotContain(Token, File.ReadAllText(f));
        Assert.DoesNotContain(Token, denied.Message + denied.Remediation);
    }

    [Fact]
    public async Task A_failed_pull_leaves_no_entry_and_no_partial_file()
    {
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => Store.PullAsync("org/public/missing.gguf", Options()))).Kind);
        Assert.Equal(ErrorKind.Invalid, (await Assert.ThrowsAsync<MicroagentException>(() => Store.PullAsync("org/public/notgguf.gguf", Options()))).Kind);
        _etag = new string('0', 64);
        Assert.Equal(ErrorKind.Transient, (await Assert.ThrowsAsync<MicroagentException>(() => Store.PullAsync("org/public/tiny.gguf", Options()))).Kind);
        Assert.Empty(Store.List());
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "models", "blobs")));
    }

    [Fact]
    public async Task Plain_http_is_refused_off_loopback()
    {
        var e = await Assert.ThrowsAsync<MicroagentException>(() => Store.PullAsync("org/public/tiny.gguf", new ModelPullOptions { Endpoint = "http://example.com" }));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
    }

    [Fact]
    public async Task A_local_file_is_imported_by_digest_then_listed_deleted_and_pruned()
    {
        string local = Path.Combine(_dir, "tiny.gguf");
        var a = await Store.PullAsync(local);
        var b = await Store.PullAsync("org/public/tiny.gguf", Options());
        Assert.Equal(a.Path, b.Path); // same digest, one blob
        Assert.Equal(local, a.Ref);
        Assert.Equal(2, Store.List().Count);
        Assert.True(await Store.DeleteAsync(local));
        Assert.True(File.Exists(b.Path)); // still named by the other entry
        Assert.True(await Store.DeleteAsync(b.Sha256));
        Assert.False(File.Exists(b.Path));
        Assert.False(await Store.DeleteAsync(local));
        string stray = Path.Combine(_dir, "models", "blobs", "sha256-" + new string('1', 64) + ".gguf");
        File.WriteAllText(stray, "x");
        var pruned = await Store.PruneAsync();
        Assert.Equal([stray], pruned.Removed);
    }
}
