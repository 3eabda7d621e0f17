using System.Security.Cryptography;

namespace Microagent.Tools;

/// <summary>SHA-256 helpers; digests are lowercase hex.</summary>
internal static class Hashing
{
    /// <summary>Lowercase hex SHA-256 of a file's contents.</summary>
    public static async Task<string> Sha256FileAsync(string path, CancellationToken ct = default)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct).ConfigureAwait(false));
    }

    /// <summary>Lowercase hex SHA-256 of bytes.</summary>
    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
