namespace Microagent.Images;

/// <summary>
/// Media types of the OCI image spec (image-spec <c>media-types.md</c>) and their Docker
/// schema 2 equivalents, which registries still serve.
/// </summary>
internal static class OciMediaTypes
{
    /// <summary>OCI image index.</summary>
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";
    /// <summary>OCI image manifest.</summary>
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    /// <summary>OCI image config.</summary>
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";
    /// <summary>Uncompressed layer tar.</summary>
    public const string LayerTar = "application/vnd.oci.image.layer.v1.tar";
    /// <summary>Gzip-compressed layer tar.</summary>
    public const string LayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// <summary>Zstd-compressed layer tar.</summary>
    public const string LayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";

    /// <summary>Docker manifest list.</summary>
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// <summary>Docker image manifest.</summary>
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    /// <summary>Docker image config.</summary>
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    /// <summary>Docker gzip layer.</summary>
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// <summary>Annotation holding a manifest's tag in index.json (image-spec <c>annotations.md</c>).</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    /// <summary>Whether the type is an index / manifest list.</summary>
    public static bool IsIndex(string? t) => t is ImageIndex or DockerManifestList;

    /// <summary>Whether the type is an image manifest.</summary>
    public static bool IsManifest(string? t) => t is ImageManifest or DockerManifest;
}
