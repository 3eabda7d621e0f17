using System.Security.Cryptography;
using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Kernels;

/// <summary>Where <see cref="KernelSources.InstallAsync"/> takes a kernel from: exactly one of a path, a URL or a version.</summary>
public sealed record KernelInstallRequest
{
    /// <summary>A Debian linux-image .deb or a vmlinuz file on this host.</summary>
    public string? From { get; init; }
    /// <summary>An http(s) URL of a .deb or vmlinuz; needs <see cref="Sha256"/>.</summary>
    public string? Url { get; init; }
    /// <summary>A kernel version whose package is in the package cache (<see cref="KernelStore.FindPackage"/>).</summary>
    public string? Version { get; init; }
    /// <summary>The sha256 (hex) the file must have before anything is installed; required with <see cref="Url"/>.</summary>
    public string? Sha256 { get; init; }
}

/// <summary>A file checked against an expected sha256.</summary>
/// <param name="Path">The file.</param>
/// <param name="Sha256">Its sha256.</param>
/// <param name="Bytes">Its size.</param>
public sealed record KernelFileCheck(string Path, string Sha256, long Bytes);

/// <summary>Whether the kernel boots would use is present and unchanged (<c>kernel check</c>).</summary>
/// <param name="Ok">Present and verified.</param>
/// <param name="Kernel">The default kernel, when one is installed.</param>
/// <param name="Problem">What is wrong, when not ok.</param>
/// <param name="Remediation">What to do about it.</param>
public sealed record KernelCheck(bool Ok, InstalledKernel? Kernel, string? Problem, string? Remediation);

/// <summary>
/// Kernel installs from a path, a URL or a version, each checked against a sha256 before it is installed, and the checks of
/// <c>kernel check</c> and <c>kernel verify --path</c> (docs/ARCHITECTURE.md "Kernels and boot").
/// </summary>
public sealed class KernelSources(StatePaths paths)
{
    /// <summary>Largest download accepted (a Debian cloud kernel package is about 70 MiB).</summary>
    public const long MaxDownloadBytes = 512L << 20;

    /// <summary>Installs the kernel <paramref name="request"/> names; its file is verified first when a sha256 is given.</summary>
    public async Task<InstalledKernel> InstallAsync(KernelInstallRequest request, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        int given = new[] { request.From, request.Url, request.Version }.Count(x => x is not null);
        if (given > 1)
            throw new MicroagentException(ErrorKind.Invalid, "give one kernel source: a path, a URL or a version", "e.g. `microagent kernel install --from ./linux-image.deb`") { Field = "source" };
        var store = new KernelStore(paths);
        if (request.Url is { } url)
        {
            string sha = request.Sha256 ?? throw new MicroagentException(ErrorKind.Invalid, "a kernel download needs --sha256: nothing fetched is installed unverified",
                "give the package's sha256 (from its Packages index or release page) with --sha256 HEX") { Field = "sha256" };
            string file = await DownloadAsync(url, sha, progress, ct).ConfigureAwait(false);
            try { return await store.InstallAsync(file, ct, progress).ConfigureAwait(false); }
            finally { File.Delete(file); }
        }
        string? source = request.From;
        if (request.Version is { } version)
            source = KernelStore.FindPackage(version) ?? throw new MicroagentException(ErrorKind.NotFound,
                $"no package of kernel {version} in {KernelStore.DefaultDebCacheDir} or share/microagent/kernel", "give it with --from PATH or --url URL --sha256 HEX") { Field = "version" };
        if (source is not null && request.Sha256 is { } expected) await VerifyFileAsync(source, expected, ct).ConfigureAwait(false);
        return await store.InstallAsync(source, ct, progress).ConfigureAwait(false);
    }

    /// <summary>The sha256 of <paramref name="path"/>, which must be <paramref name="sha256"/> (else <see cref="ErrorKind.Permanent"/>).</summary>
    public static async Task<KernelFileCheck> VerifyFileAsync(string path, string sha256, CancellationToken ct = default)
    {
        string expected = NormalizeSha256(sha256);
        if (!File.Exists(path))
            throw new MicroagentException(ErrorKind.NotFound, $"{path} does not exist", "give the path of a kernel image or package") { Field = "path" };
        string actual = await Hashing.Sha256FileAsync(path, ct).ConfigureAwait(false);
        if (actual != expected)
            throw MicroagentException.Permanent($"{path} has sha256 {actual}, not the expected {expected}", "the file is not the one you meant, or it was corrupted: fetch it again");
        return new KernelFileCheck(Path.GetFullPath(path), actual, new FileInfo(path).Length);
    }

    /// <summary>Whether the default kernel is installed and its image still has its recorded sha256.</summary>
    public async Task<KernelCheck> CheckAsync(CancellationToken ct = default)
    {
        var store = new KernelStore(paths);
        if (store.GetDefault() is not { } kernel)
            return new KernelCheck(false, null, "no kernel is installed",
                KernelStore.FindDefaultDeb() is { } deb ? $"`microagent kernel install --from {deb}` (or let the first boot install it)" : "run scripts/install.sh, or `microagent kernel install --from PATH`");
        try
        {
            await store.VerifyAsync(kernel, ct).ConfigureAwait(false);
            return new KernelCheck(true, kernel, null, null);
        }
        catch (MicroagentException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Permanent)
        {
            return new KernelCheck(false, kernel, e.Message, e.Remediation);
        }
    }

    /// <summary>Lowercase 64-hex (an optional <c>sha256:</c> prefix is dropped); anything else is <see cref="ErrorKind.Invalid"/>.</summary>
    public static string NormalizeSha256(string sha256)
    {
        string s = sha256.Trim().ToLowerInvariant();
        if (s.StartsWith("sha256:", StringComparison.Ordinal)) s = s[7..];
        return s.Length == 64 && s.All(char.IsAsciiHexDigitLower) ? s
            : throw new MicroagentException(ErrorKind.Invalid, $"'{sha256}' is not a sha256 (64 hex digits)", "copy the whole digest, e.g. from `sha256sum FILE`") { Field = "sha256" };
    }

    /// <summary>Fetches <paramref name="url"/> into the state's tmp directory, hashing as it goes; a wrong sha256 keeps nothing.</summary>
    private async Task<string> DownloadAsync(string url, string sha256, IProgress<string>? progress, CancellationToken ct)
    {
        string expected = NormalizeSha256(sha256);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new MicroagentException(ErrorKind.Invalid, $"'{url}' is not an http(s) URL", "give an http:// or https:// URL of a .deb or vmlinuz") { Field = "url" };
        StatePaths.EnsureDirectory(paths.Root);
        StatePaths.EnsureDirectory(paths.Tmp);
        string name = Path.GetFileName(uri.AbsolutePath) is { Length: > 0 } n && n.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '+') ? n : "kernel";
        string file = Path.Combine(paths.Tmp, $"download-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}-{name}");
        progress?.Report($"downloading {uri}");
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
            using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw MicroagentException.Permanent($"{uri} answered {(int)response.StatusCode} {response.ReasonPhrase}", "check the URL");
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using (var output = new FileStream(file, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 16];
                long total = 0;
                int read;
                while ((read = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > MaxDownloadBytes)
                        throw MicroagentException.Permanent($"{uri} is larger than {MaxDownloadBytes >> 20} MiB: not a kernel", "check the URL");
                    hash.AppendData(buffer, 0, read);
                    await output.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                }
                string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (actual != expected)
                    throw MicroagentException.Permanent($"{uri} has sha256 {actual}, not the expected {expected}; nothing was installed",
                        "check the URL and the sha256 (the download may have been altered)");
            }
            return file;
        }
        catch (HttpRequestException e)
        {
            File.Delete(file);
            throw MicroagentException.Transient($"cannot fetch {uri}: {e.Message}", "check the URL and the network", e);
        }
        catch
        {
            File.Delete(file);
            throw;
        }
    }
}
