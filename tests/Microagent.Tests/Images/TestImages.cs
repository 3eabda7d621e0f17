using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Microagent.Tests.Images;

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("microagent-test-").FullName;
    }

    public string Path { get; }

    public string Sub(string name)
    {
        string p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Builds layer tars and OCI layouts for tests.</summary>
internal static class TestImages
{
    public static byte[] Tar(Action<TarWriter> build)
    {
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true)) build(w);
        return ms.ToArray();
    }

    public static void File(this TarWriter w, string name, string content, int mode = 0b110_100_100, int uid = 0, int gid = 0)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)mode, Uid = uid, Gid = gid,
            ModificationTime = new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.Zero),
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
        };
        w.WriteEntry(e);
    }

    public static void Dir(this TarWriter w, string name, int mode = 0b111_101_101, int uid = 0, int gid = 0)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid });

    public static void Symlink(this TarWriter w, string name, string target)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF });

    public static void HardLink(this TarWriter w, string name, string target)
        => w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0b110_100_100 });

    public static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>Replaces the only occurrence of <paramref name="find"/> with <paramref name="replace"/> (same length).</summary>
    public static byte[] Patch(byte[] data, byte[] find, byte[] replace)
    {
        if (find.Length != replace.Length) throw new ArgumentException("lengths differ");
        int at = data.AsSpan().IndexOf(find);
        if (at < 0 || data.AsSpan(at + 1).IndexOf(find) >= 0) throw new ArgumentException("placeholder not found exactly once");
        byte[] copy = (byte[])data.Clone();
        replace.CopyTo(copy, at);
        return copy;
    }

    /// <summary>zstd-compresses with the zstd CLI.</summary>
    public static byte[] Zstd(byte[] data)
    {
        string tmp = System.IO.Path.GetTempFileName();
        try
        {
            System.IO.File.WriteAllBytes(tmp, data);
            Run("zstd", "-q", "-f", "-3", tmp, "-o", tmp + ".zst");
            return System.IO.File.ReadAllBytes(tmp + ".zst");
        }
        finally
        {
            System.IO.File.Delete(tmp);
            System.IO.File.Delete(tmp + ".zst");
        }
    }

    public static string Sha(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public static string WriteBlob(string layout, byte[] data)
    {
        string dir = System.IO.Path.Combine(layout, "blobs", "sha256");
        Directory.CreateDirectory(dir);
        string digest = Sha(data);
        System.IO.File.WriteAllBytes(System.IO.Path.Combine(dir, digest[7..]), data);
        return digest;
    }

    public static string Descriptor(string mediaType, byte[] data, string digest, string extra = "")
        => $"{{\"mediaType\":\"{mediaType}\",\"digest\":\"{digest}\",\"size\":{data.Length}{extra}}}";

    /// <summary>Writes a manifest (+config, layers) into the layout's blobs and returns (manifest bytes, digest).</summary>
    public static (byte[] Bytes, string Digest) Manifest(string layout, byte[][] layerTars, bool gzip = true, string cmd = "/bin/sh", string arch = "amd64")
    {
        var layerDescs = new List<string>();
        var diffIds = new List<string>();
        foreach (byte[] tar in layerTars)
        {
            byte[] blob = gzip ? Gzip(tar) : tar;
            string d = WriteBlob(layout, blob);
            layerDescs.Add(Descriptor(gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar", blob, d));
            diffIds.Add($"\"{Sha(tar)}\"");
        }
        byte[] config = Encoding.UTF8.GetBytes(
            $"{{\"architecture\":\"{arch}\",\"os\":\"linux\",\"config\":{{\"Env\":[\"PATH=/bin\",\"A=b\"],\"Cmd\":[\"{cmd}\"],\"WorkingDir\":\"/w\",\"User\":\"1000\"}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{string.Join(',', diffIds)}]}}}}");
        string cd = WriteBlob(layout, config);
        byte[] manifest = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{Descriptor("application/vnd.oci.image.config.v1+json", config, cd)},\"layers\":[{string.Join(',', layerDescs)}]}}");
        return (manifest, WriteBlob(layout, manifest));
    }

    /// <summary>A complete single-image layout tagged <paramref name="tag"/>.</summary>
    public static string Layout(string dir, byte[][] layerTars, string tag = "latest", bool gzip = true)
    {
        Directory.CreateDirectory(dir);
        var (m, md) = Manifest(dir, layerTars, gzip);
        System.IO.File.WriteAllText(System.IO.Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        System.IO.File.WriteAllText(System.IO.Path.Combine(dir, "index.json"),
            $"{{\"schemaVersion\":2,\"manifests\":[{Descriptor("application/vnd.oci.image.manifest.v1+json", m, md, $",\"annotations\":{{\"org.opencontainers.image.ref.name\":\"{tag}\"}}")}]}}");
        return md;
    }

    /// <summary>Runs a tool and returns stdout; fails the test on a non-zero exit.</summary>
    public static string Run(string exe, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{exe} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}");
        return stdout;
    }

    /// <summary>"uid:gid:octal-mode" of a path itself.</summary>
    public static string Stat(string path) => Run("stat", "-c", "%u:%g:%a", path).Trim();

    /// <summary>The repository root (holds microagent.slnx).</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (System.IO.File.Exists(System.IO.Path.Combine(d.FullName, "microagent.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}
