using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Images;

/// <summary>
/// Images from a real registry (docker-registry on 127.0.0.1): auth, pulls, multi-arch selection,
/// and every layer metadata case checked inside the booted guest. Each test uses its own state dir.
/// </summary>
public sealed class RegistryImageTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("ma-e2e-img-").FullName;
    private readonly string _state;

    public RegistryImageTests() => _state = Path.Combine(_tmp, "state");

    public void Dispose()
    {
        Assert.Empty(MicroagentCli.QemuProcessesUnder(_state));
        try { Directory.Delete(_tmp, true); } catch (IOException) { }
    }

    private Task<CliResult> Cli(params string[] args) => MicroagentCli.RunAsync(args, stateDir: _state);
    private Task<CliResult> CliIn(byte[] stdin, params string[] args) => MicroagentCli.RunAsync(args, stdin, _state);

    private const string Password = "pa55-w0rd-never-printed";
    private static readonly byte[] Cap = [0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // cap_setuid,cap_net_raw+ep
    private const string CapPlaceholder = "@@capability-bytes@@";

    [Fact]
    public async Task AuthenticatedPullRunsWithImageConfigAndExactMetadata()
    {
        using var registry = new LocalRegistry("alice", Password);
        string layout = Path.Combine(_tmp, "meta");
        BuildMetadataImage(layout);
        registry.Push($"oci:{layout}:1", "test/meta:1", creds: $"alice:{Password}");
        string image = $"{registry.Address}/test/meta:1";

        // Anonymous pull: refused, with a hint to log in.
        var denied = await Cli("image", "pull", "--json", image);
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("\"kind\": \"policy_denied\"", denied.Stdout);
        Assert.Contains("registry login", denied.Stdout);

        var wrong = await CliIn("nope\n"u8.ToArray(), "registry", "login", registry.Address, "-u", "alice", "--password-stdin");
        Assert.NotEqual(0, wrong.ExitCode);
        var login = await CliIn(Encoding.UTF8.GetBytes(Password + "\n"), "registry", "login", registry.Address, "-u", "alice", "--password-stdin");
        Assert.True(login.ExitCode == 0, login.Stderr);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, System.IO.File.GetUnixFileMode(Path.Combine(_state, "auth.json")));
        var list = await Cli("registry", "list", "--json");
        Assert.Contains("alice", list.Stdout);

        var pull = await Cli("image", "pull", "--json", image);
        Assert.True(pull.ExitCode == 0, pull.Stdout + pull.Stderr);
        using var doc = JsonDocument.Parse(pull.Stdout); // stdout is exactly one JSON document
        string baseline = doc.RootElement.GetProperty("baseline").GetString()!;
        Assert.Equal("linux/amd64", doc.RootElement.GetProperty("platform").GetString());
        foreach (var r in new[] { denied, wrong, login, list, pull }) Assert.DoesNotContain(Password, r.Stdout + r.Stderr);

        // xattrs in the sealed baseline, exactly as the layer says.
        string ea = Tools.Run("debugfs", "-R", "ea_list /bin/capped", baseline);
        Assert.Contains("user.note", ea);
        Assert.Contains("security.capability", ea);

        // Entrypoint + Cmd + Env + WorkingDir from the image config.
        var run = await Cli("run", "--image", image);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("hi from /work\n", run.Stdout);
        Assert.DoesNotContain("applying", run.Stderr); // cached baseline: no extraction

        // Every metadata case, seen by the guest; --entrypoint replaces the image's.
        var stat = await Cli("run", "--image", image, "--entrypoint", "/bin/sh", "--", "-c",
            "stat -c '%n %u:%g %a %F %h' /bin/capped /bin/capped2 /bin/sgid /tmp2 /devs/mynull /devs/fifo; stat -c '%t:%T' /devs/mynull; " +
            "readlink /etc/link; ls /opq; ls /etc/gone 2>&1; stat -c %Y /bin/sgid");
        Assert.True(stat.ExitCode == 0, stat.Stdout + stat.Stderr);
        string o = stat.Stdout;
        Assert.Contains("/bin/capped 1000:1000 4755 regular file 2", o);
        Assert.Contains("/bin/capped2 1000:1000 4755 regular file 2", o);
        Assert.Contains("/bin/sgid 0:50 2755 regular file 1", o);
        Assert.Contains("/tmp2 0:0 1777 directory", o);
        Assert.Contains("/devs/mynull 0:0 666 character special file 1", o);
        Assert.Contains("/devs/fifo 0:0 644 fifo 1", o);
        Assert.Contains("1:3\n", o);
        Assert.Contains("/etc/passwd\n", o);
        Assert.Contains("new\n", o);
        Assert.DoesNotContain("old", o);
        Assert.Contains("No such file", o);
        Assert.EndsWith("1577934245\n", o); // 2020-01-02T03:04:05Z

        var inspect = await Cli("image", "inspect", image);
        Assert.Contains("\"Entrypoint\"", inspect.Stdout.Replace("\"entrypoint\"", "\"Entrypoint\""));
        var rm = await Cli("image", "rm", image);
        Assert.True(rm.ExitCode == 0, rm.Stderr);
        Assert.False(System.IO.File.Exists(baseline));
        Assert.Equal(0, (await Cli("registry", "logout", registry.Address)).ExitCode);
        Assert.DoesNotContain("alice", (await Cli("registry", "list")).Stdout);
    }

    [Fact]
    public async Task MultiArchIndexSelectsThePlatform()
    {
        using var registry = new LocalRegistry();
        string layout = Path.Combine(_tmp, "multi");
        BuildMultiArchImage(layout);
        registry.Push($"oci:{layout}", "test/multi:1", all: true);
        string image = $"{registry.Address}/test/multi:1";

        var amd = await Cli("image", "pull", "--json", image);
        Assert.True(amd.ExitCode == 0, amd.Stdout + amd.Stderr);
        var arm = await Cli("image", "pull", "--json", "--arch", "arm64", image);
        Assert.True(arm.ExitCode == 0, arm.Stdout + arm.Stderr);
        using var a = JsonDocument.Parse(amd.Stdout);
        using var b = JsonDocument.Parse(arm.Stdout);
        Assert.Equal("linux/amd64", a.RootElement.GetProperty("platform").GetString());
        Assert.Equal("linux/arm64", b.RootElement.GetProperty("platform").GetString());
        Assert.NotEqual(a.RootElement.GetProperty("digest").GetString(), b.RootElement.GetProperty("digest").GetString());
        Assert.Contains("arm64 layer", Tools.Run("debugfs", "-R", "cat /arch", b.RootElement.GetProperty("baseline").GetString()!));

        var none = await Cli("image", "pull", "--json", "--arch", "s390x", image);
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("not_found", none.Stdout);
        Assert.Contains("linux/arm64", none.Stdout);

        var run = await Cli("run", "--image", image, "--", "cat", "/arch");
        Assert.Equal("amd64 layer", run.Stdout);

        var ls = await Cli("image", "list", "--json");
        Assert.Equal(2, JsonDocument.Parse(ls.Stdout).RootElement.GetArrayLength());
        var prune = await Cli("image", "prune", "--all", "--json");
        Assert.Equal(0, prune.ExitCode);
        Assert.Equal("[]", (await Cli("image", "list", "--json")).Stdout.Trim());
    }

    [Fact]
    public async Task PythonImageFromDebootstrapRuns()
    {
        string layout = Path.Combine(MicroagentCli.RepoRoot, "build", "images", "python");
        Tools.Run("bash", Path.Combine(MicroagentCli.RepoRoot, "scripts", "build-python-image.sh"), layout);
        using var registry = new LocalRegistry();
        registry.Push($"oci:{layout}:3.11", "tools/python:3.11");
        string image = $"{registry.Address}/tools/python:3.11";
        var pull = await MicroagentCli.RunAsync(["image", "pull", image], stateDir: _state, timeoutSeconds: 600);
        Assert.True(pull.ExitCode == 0, pull.Stderr);
        Assert.Contains("downloading", pull.Stderr); // plain phase lines when stderr is not a terminal
        var run = await Cli("run", "--image", image, "--", "python3", "-c", "import os; print(6*7, os.getcwd())");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("42 /root\n", run.Stdout);
    }

    [Fact]
    public async Task A_pull_killed_part_way_through_a_blob_resumes_it_with_a_range_request_and_fetches_only_the_rest()
    {
        string layout = Path.Combine(MicroagentCli.RepoRoot, "build", "images", "default");
        using var registry = new LocalRegistry();
        registry.Push($"oci:{layout}", "test/resume:1");
        const long cut = 300_000;
        using var proxy = new CountingProxy(registry.Address, minBlob: 500_000, stallAmount: cut);
        string image = $"{proxy.Address}/test/resume:1";

        using (var first = MicroagentCli.Start(["image", "pull", "--json", image], _state))
        {
            var stalled = await proxy.Stalled.WaitAsync(TimeSpan.FromSeconds(120));
            string blobs = Path.Combine(_state, "images");
            string? partial = null;
            await Poll.UntilAsync(() => (partial = Directory.GetFiles(blobs, "*.partial", SearchOption.AllDirectories).FirstOrDefault()) is { } p
                && new FileInfo(p).Length == cut, TimeSpan.FromSeconds(60), "the partial blob to hold every byte relayed");
            first.Kill(); // SIGKILL mid-blob: nothing gets to clean up
            await first.WaitForExitAsync();
            Assert.True(stalled.ContentLength > cut);
            Assert.False(System.IO.File.Exists(partial![..^".partial".Length]), "the partial blob was taken for a complete one");
        }

        var again = await Cli("image", "pull", "--json", image);
        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        List<ProxiedRequest> blobRequests;
        lock (proxy.Requests) blobRequests = [.. proxy.Requests.Where(r => r.RequestLine.Contains("/blobs/") && r.ContentLength > 0)];
        var big = blobRequests.First(r => r.Range is null && r.ContentLength > 500_000);
        var resumed = Assert.Single(blobRequests, r => r.Range is not null);
        Assert.Equal(big.RequestLine, resumed.RequestLine);
        Assert.Equal($"bytes={cut}-", resumed.Range);
        Assert.Equal(206, resumed.Status);
        Assert.Equal(big.ContentLength - cut, resumed.ContentLength);
        Assert.Equal(big.ContentLength - cut, resumed.BodyBytesServed); // only the remainder crossed the wire
        Assert.DoesNotContain(blobRequests, r => r.Range is null && r.ContentLength > 500_000 && !ReferenceEquals(r, big)); // never fetched whole again
        Assert.Empty(Directory.GetFiles(Path.Combine(_state, "images"), "*.partial", SearchOption.AllDirectories));
        var run = await Cli("run", "--image", image, "--", "cat", "/etc/hostname");
        Assert.True(run.ExitCode == 0, run.Stderr);
    }

    // ---- image builders ----

    private static void BuildMetadataImage(string dir)
    {
        var (baseLayer, baseDiffId) = DefaultImageLayer(dir);
        byte[] meta = Tar(w =>
        {
            Dir(w, "work");
            Dir(w, "tmp2", 0b1_111_111_111);
            Dir(w, "devs");
            Dir(w, "opq");
            File(w, "opq/old", "old");
            File(w, "etc/gone", "bye");
            var capped = new PaxTarEntry(TarEntryType.RegularFile, "bin/capped",
                new Dictionary<string, string> { ["SCHILY.xattr.security.capability"] = CapPlaceholder, ["SCHILY.xattr.user.note"] = "hello" })
            { Mode = (UnixFileMode)0b100_111_101_101, Uid = 1000, Gid = 1000, ModificationTime = When, DataStream = new MemoryStream("x"u8.ToArray()) };
            w.WriteEntry(capped);
            w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "bin/capped2") { LinkName = "bin/capped", ModificationTime = When });
            File(w, "bin/sgid", "g", 0b010_111_101_101, gid: 50);
            w.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "devs/mynull") { DeviceMajor = 1, DeviceMinor = 3, Mode = (UnixFileMode)0b110_110_110, ModificationTime = When });
            w.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, "devs/fifo") { Mode = (UnixFileMode)0b110_100_100, ModificationTime = When });
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "etc/link") { LinkName = "/etc/passwd", ModificationTime = When });
        });
        meta = Patch(meta, Encoding.ASCII.GetBytes(CapPlaceholder), Cap);
        byte[] whiteouts = Tar(w =>
        {
            File(w, "etc/.wh.gone", "");
            File(w, "opq/.wh..wh..opq", "");
            File(w, "opq/new", "new");
        });
        byte[] metaBlob = Gzip(meta);
        byte[] whBlob = Zstd(whiteouts);
        string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin:/usr/bin\",\"GREETING=hi\"],\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo $GREETING from $(pwd)\"],\"WorkingDir\":\"/work\"},"
            + $"\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{baseDiffId}\",\"{Sha(meta)}\",\"{Sha(whiteouts)}\"]}}}}";
        WriteLayout(dir, Manifest(dir, config, [baseLayer, Desc(dir, metaBlob, "application/vnd.oci.image.layer.v1.tar+gzip"), Desc(dir, whBlob, "application/vnd.oci.image.layer.v1.tar+zstd")]), "1");
    }

    private static void BuildMultiArchImage(string dir)
    {
        var (baseLayer, baseDiffId) = DefaultImageLayer(dir);
        byte[] amdTar = Tar(w => File(w, "arch", "amd64 layer"));
        byte[] armTar = Tar(w => File(w, "arch", "arm64 layer"));
        string amd = Manifest(dir, Config("amd64", baseDiffId, Sha(amdTar)), [baseLayer, Desc(dir, Gzip(amdTar), "application/vnd.oci.image.layer.v1.tar+gzip")]);
        string arm = Manifest(dir, Config("arm64", baseDiffId, Sha(armTar)), [baseLayer, Desc(dir, Gzip(armTar), "application/vnd.oci.image.layer.v1.tar+gzip")]);
        string index = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[" + Platform(amd, "amd64") + "," + Platform(arm, "arm64") + "]}";
        byte[] ib = Encoding.UTF8.GetBytes(index);
        WriteLayout(dir, $"{{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"{Blob(dir, ib)}\",\"size\":{ib.Length}}}", "");
    }

    private static string Platform(string manifestDesc, string arch)
        => manifestDesc[..^1] + $",\"platform\":{{\"architecture\":\"{arch}\",\"os\":\"linux\"}}}}";

    private static string Config(string arch, string baseDiffId, string diffId)
        => $"{{\"architecture\":\"{arch}\",\"os\":\"linux\",\"config\":{{\"Env\":[\"PATH=/bin\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{baseDiffId}\",\"{diffId}\"]}}}}";

    private static readonly DateTimeOffset When = new(2020, 1, 2, 3, 4, 5, TimeSpan.Zero);

    /// <summary>The busybox layer of the embedded default image, copied into <paramref name="dir"/>: (descriptor JSON, diff_id).</summary>
    private static (string Desc, string DiffId) DefaultImageLayer(string dir)
    {
        string src = Path.Combine(MicroagentCli.RepoRoot, "build", "images", "default");
        using var index = JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(src, "index.json")));
        string md = index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString()!;
        using var manifest = JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(src, "blobs", "sha256", md[7..])));
        string cd = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
        using var config = JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(src, "blobs", "sha256", cd[7..])));
        var layer = manifest.RootElement.GetProperty("layers")[0];
        string ld = layer.GetProperty("digest").GetString()!;
        Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
        System.IO.File.Copy(Path.Combine(src, "blobs", "sha256", ld[7..]), Path.Combine(dir, "blobs", "sha256", ld[7..]), true);
        return (layer.GetRawText(), config.RootElement.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString()!);
    }

    private static string Manifest(string dir, string config, string[] layers)
    {
        byte[] cb = Encoding.UTF8.GetBytes(config);
        string cd = Blob(dir, cb);
        byte[] mb = Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":"
            + $"{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{cd}\",\"size\":{cb.Length}}},\"layers\":[{string.Join(',', layers)}]}}");
        return $"{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{Blob(dir, mb)}\",\"size\":{mb.Length}}}";
    }

    private static void WriteLayout(string dir, string desc, string tag)
    {
        string d = tag.Length == 0 ? desc : desc[..^1] + $",\"annotations\":{{\"org.opencontainers.image.ref.name\":\"{tag}\"}}}}";
        System.IO.File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        System.IO.File.WriteAllText(Path.Combine(dir, "index.json"), $"{{\"schemaVersion\":2,\"manifests\":[{d}]}}");
    }

    private static string Desc(string dir, byte[] blob, string mediaType) => $"{{\"mediaType\":\"{mediaType}\",\"digest\":\"{Blob(dir, blob)}\",\"size\":{blob.Length}}}";

    private static string Blob(string dir, byte[] data)
    {
        string d = Sha(data);
        Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
        System.IO.File.WriteAllBytes(Path.Combine(dir, "blobs", "sha256", d[7..]), data);
        return d;
    }

    private static string Sha(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static byte[] Tar(Action<TarWriter> build)
    {
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true)) build(w);
        return ms.ToArray();
    }

    private static void File(TarWriter w, string name, string content, int mode = 0b110_100_100, int uid = 0, int gid = 0)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)mode, Uid = uid, Gid = gid, ModificationTime = When,
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
        });

    private static void Dir(TarWriter w, string name, int mode = 0b111_101_101)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, ModificationTime = When });

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    private static byte[] Zstd(byte[] data)
    {
        string tmp = Path.GetTempFileName();
        try
        {
            System.IO.File.WriteAllBytes(tmp, data);
            Tools.Run("zstd", "-q", "-f", tmp, "-o", tmp + ".zst");
            return System.IO.File.ReadAllBytes(tmp + ".zst");
        }
        finally { System.IO.File.Delete(tmp); System.IO.File.Delete(tmp + ".zst"); }
    }

    private static byte[] Patch(byte[] data, byte[] find, byte[] replace)
    {
        int at = data.AsSpan().IndexOf(find);
        byte[] copy = (byte[])data.Clone();
        replace.CopyTo(copy, at);
        return copy;
    }
}
