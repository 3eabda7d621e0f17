using System.Text.RegularExpressions;
using Microagent.Errors;

namespace Microagent.Images;

/// <summary>
/// A registry image reference, normalised the way Docker does (distribution/reference
/// <c>normalize.go</c>, <c>regexp.go</c>): <c>busybox</c> → <c>docker.io/library/busybox:latest</c>.
/// A tag and a digest may both be given; the digest then decides what is pulled.
/// </summary>
public sealed partial record ImageReference(string Registry, string Repository, string? Tag, string? Digest)
{
    /// <summary>Docker Hub's canonical name.</summary>
    public const string DockerHub = "docker.io";

    /// <summary>Host serving Docker Hub's v2 API.</summary>
    public const string DockerHubApiHost = "registry-1.docker.io";

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")]
    private static partial Regex PathComponent();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex("^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\\[[0-9a-fA-F:.]+\\](?::[0-9]+)?$")]
    private static partial Regex DomainPattern();

    /// <summary>Tag or digest used to fetch the manifest (the digest when both are given).</summary>
    public string ManifestReference => Digest ?? Tag ?? "latest";

    /// <summary>Host the v2 API is served from (Docker Hub's API lives on another host).</summary>
    public string ApiHost => Registry == DockerHub ? DockerHubApiHost : Registry;

    /// <summary><c>registry/repository</c>.</summary>
    public string Name => $"{Registry}/{Repository}";

    /// <summary>The full normalised form: <c>registry/repository[:tag][@digest]</c>.</summary>
    public override string ToString() => Name + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    /// <summary>Whether <paramref name="s"/> parses as a reference (no exception).</summary>
    public static bool TryParse(string s, out ImageReference? reference)
    {
        try { reference = Parse(s); return true; }
        catch (MicroagentException) { reference = null; return false; }
    }

    /// <summary>Parses and normalises <paramref name="input"/>; throws an <see cref="ErrorKind.Invalid"/> error saying what is wrong.</summary>
    public static ImageReference Parse(string input)
    {
        string s = input.Trim();
        if (s.StartsWith("docker://", StringComparison.Ordinal)) s = s["docker://".Length..];
        if (s.Length == 0) throw Bad(input, "it is empty");
        if (s.Length > 512) throw Bad(input, "it is too long");

        string? digest = null;
        int at = s.IndexOf('@');
        if (at >= 0)
        {
            digest = s[(at + 1)..];
            s = s[..at];
            if (!digest.StartsWith("sha256:", StringComparison.Ordinal))
                throw Bad(input, digest.Contains(':') ? $"digest algorithm `{digest.Split(':')[0]}` is not supported (only sha256)" : "a digest must look like sha256:<64 hex digits>");
            string hex = digest["sha256:".Length..];
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigitLower))
                throw Bad(input, "a sha256 digest must be 64 lowercase hex digits");
        }

        string? tag = null;
        int lastSlash = s.LastIndexOf('/');
        int colon = s.LastIndexOf(':');
        if (colon > lastSlash)
        {
            tag = s[(colon + 1)..];
            s = s[..colon];
            if (!TagPattern().IsMatch(tag)) throw Bad(input, $"tag `{tag}` is invalid (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)");
        }

        string registry = DockerHub;
        string path = s;
        int slash = s.IndexOf('/');
        if (slash > 0)
        {
            string first = s[..slash];
            if (first.Contains('.') || first.Contains(':') || first == "localhost" || first.Any(char.IsAsciiLetterUpper))
            {
                if (!DomainPattern().IsMatch(first)) throw Bad(input, $"registry `{first}` is not a valid host[:port]");
                registry = first == "index.docker.io" ? DockerHub : first;
                path = s[(slash + 1)..];
            }
        }
        if (path.Length == 0) throw Bad(input, "the repository name is missing");
        string[] components = path.Split('/');
        foreach (string c in components)
        {
            if (c.Length == 0) throw Bad(input, "it has an empty path component (`//` or a trailing `/`)");
            if (c.Any(char.IsAsciiLetterUpper)) throw Bad(input, "repository names must be lowercase");
            if (!PathComponent().IsMatch(c)) throw Bad(input, $"`{c}` is not a valid repository component (lowercase letters, digits, separators `.`, `_`, `__`, `-`)");
        }
        if (registry == DockerHub && components.Length == 1) path = "library/" + path;
        if (registry.Length + 1 + path.Length > 255) throw Bad(input, "the name is longer than 255 characters");
        if (tag is null && digest is null) tag = "latest";
        return new ImageReference(registry, path, tag, digest);
    }

    private static MicroagentException Bad(string input, string why)
        => MicroagentException.Invalid($"invalid image reference `{input}`: {why}",
            "use [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. busybox, debian:12 or 127.0.0.1:5000/tools/python:3.11");
}

/// <summary>Where an image comes from: a registry, a local OCI layout, a <c>docker save</c> tarball, or the embedded default.</summary>
public abstract record ImageSource
{
    private ImageSource() { }

    /// <summary>The user-facing reference as given (normalised for registries).</summary>
    public abstract string Display { get; }

    /// <summary>A registry image.</summary>
    public sealed record Registry(ImageReference Reference) : ImageSource
    {
        /// <inheritdoc />
        public override string Display => Reference.ToString();
    }

    /// <summary>An OCI image layout directory (<c>oci:PATH[:TAG]</c>); null path = the embedded default image.</summary>
    public sealed record Layout(string Path, string? Tag, string Given) : ImageSource
    {
        /// <inheritdoc />
        public override string Display => Given;
    }

    /// <summary>A <c>docker save</c> tarball (<c>docker-archive:PATH</c>).</summary>
    public sealed record DockerArchive(string Path, string Given) : ImageSource
    {
        /// <inheritdoc />
        public override string Display => Given;
    }

    /// <summary>
    /// Parses a source: null or <c>default</c> → the embedded default layout; <c>oci:PATH[:TAG]</c>;
    /// <c>docker-archive:PATH</c>; anything else is a registry reference.
    /// </summary>
    public static ImageSource Parse(string? imageRef)
    {
        if (imageRef is null or "default")
        {
            string dir = ImageStore.FindDefaultImageLayout() ?? throw MicroagentException.NotFound(
                "the default image was not found (no $MICROAGENT_DEFAULT_IMAGE, share/microagent/images/default or build/images/default)",
                "build it with `make build` (scripts/build-default-image.sh build/images/default), or set $MICROAGENT_DEFAULT_IMAGE");
            return new Layout(dir, null, "default");
        }
        if (imageRef.StartsWith("oci:", StringComparison.Ordinal))
        {
            string rest = imageRef["oci:".Length..];
            if (rest.Length == 0) throw MicroagentException.Invalid("`oci:` needs a path: oci:PATH[:TAG]");
            if (Directory.Exists(rest)) return new Layout(rest, null, imageRef);
            int colon = rest.LastIndexOf(':');
            if (colon > 0 && !rest[(colon + 1)..].Contains('/'))
                return new Layout(rest[..colon], rest[(colon + 1)..], imageRef);
            return new Layout(rest, null, imageRef);
        }
        if (imageRef.StartsWith("docker-archive:", StringComparison.Ordinal))
        {
            string path = imageRef["docker-archive:".Length..];
            if (path.Length == 0) throw MicroagentException.Invalid("`docker-archive:` needs a path: docker-archive:PATH");
            return new DockerArchive(path, imageRef);
        }
        return new Registry(ImageReference.Parse(imageRef));
    }
}
