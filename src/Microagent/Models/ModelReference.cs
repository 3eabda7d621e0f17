using System.Text.RegularExpressions;
using Microagent.Errors;

namespace Microagent.Models;

/// <summary>
/// A model reference (docs/ARCHITECTURE.md "Model runner"): <c>hf.co/ORG/REPO[@REV]/FILE.gguf</c> or <c>ORG/REPO[@REV]/FILE.gguf</c>
/// (a GGUF file of a Hugging Face repository, fetched over HTTPS), or a local <c>.gguf</c> path (imported by digest).
/// <see cref="Canonical"/> is the form the store indexes: <c>hf.co/ORG/REPO@REV/FILE</c> (revision <c>main</c> when none is given)
/// or the absolute path.
/// </summary>
/// <param name="Org">Repository owner (hf refs).</param>
/// <param name="Repo">Repository name (hf refs).</param>
/// <param name="Revision">Branch, tag or commit (hf refs).</param>
/// <param name="File">File path inside the repository (hf refs).</param>
/// <param name="LocalPath">Absolute host path (local refs).</param>
public sealed partial record ModelReference(string? Org, string? Repo, string? Revision, string? File, string? LocalPath)
{
    /// <summary>Environment variable overriding the Hugging Face endpoint (as huggingface_hub's <c>HF_ENDPOINT</c>); tests point it at a loopback server.</summary>
    public const string EndpointVariable = "MICROAGENT_HF_ENDPOINT";
    /// <summary>The default endpoint.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>A local file.</summary>
    public bool IsLocal => LocalPath is not null;

    /// <summary>The indexed form.</summary>
    public string Canonical => IsLocal ? LocalPath! : $"hf.co/{Org}/{Repo}@{Revision}/{File}";

    /// <inheritdoc/>
    public override string ToString() => Canonical;

    /// <summary>
    /// Parses <paramref name="text"/>. A path (starts with <c>/</c>, <c>./</c>, <c>../</c> or <c>~/</c>, or names an existing file) is local
    /// and must end in <c>.gguf</c>; anything else must be an hf ref whose file ends in <c>.gguf</c>.
    /// </summary>
    public static ModelReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim();
        if (s.Length == 0) throw Bad(text, "it is empty");
        if (s.StartsWith('/') || s.StartsWith("./", StringComparison.Ordinal) || s.StartsWith("../", StringComparison.Ordinal) || s.StartsWith("~/", StringComparison.Ordinal)
            || (System.IO.File.Exists(s) && !s.StartsWith("hf.co/", StringComparison.Ordinal)))
        {
            string path = s.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), s[2..]) : s;
            if (!path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw Bad(text, "a local model must be a .gguf file");
            return new ModelReference(null, null, null, null, Path.GetFullPath(path));
        }
        if (s.StartsWith("hf.co/", StringComparison.Ordinal)) s = s["hf.co/".Length..];
        else if (s.StartsWith("huggingface.co/", StringComparison.Ordinal)) s = s["huggingface.co/".Length..];
        var m = HfRef().Match(s);
        if (!m.Success) throw Bad(text, "expected hf.co/ORG/REPO[@REV]/FILE.gguf, ORG/REPO/FILE.gguf or a path to a .gguf file");
        string file = m.Groups["file"].Value;
        if (!file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw Bad(text, "the file must be a .gguf");
        if (file.Split('/').Any(p => p is "." or ".." or "")) throw Bad(text, "the file path has an empty, '.' or '..' segment");
        string rev = m.Groups["rev"].Success ? m.Groups["rev"].Value : "main";
        return new ModelReference(m.Groups["org"].Value, m.Groups["repo"].Value, rev, file, null);
    }

    /// <summary>The HTTPS resolve URL of an hf ref on <paramref name="endpoint"/> (default <see cref="DefaultEndpoint"/>): <c>ENDPOINT/ORG/REPO/resolve/REV/FILE</c>.</summary>
    public Uri ResolveUrl(string? endpoint = null)
    {
        if (IsLocal) throw new InvalidOperationException("a local model has no URL");
        string e = (endpoint ?? DefaultEndpoint).TrimEnd('/');
        string file = string.Join('/', File!.Split('/').Select(Uri.EscapeDataString));
        return new Uri($"{e}/{Uri.EscapeDataString(Org!)}/{Uri.EscapeDataString(Repo!)}/resolve/{Uri.EscapeDataString(Revision!)}/{file}");
    }

    /// <summary>The endpoint in effect: <c>$MICROAGENT_HF_ENDPOINT</c>, else <see cref="DefaultEndpoint"/>.</summary>
    public static string Endpoint() => Environment.GetEnvironmentVariable(EndpointVariable) is { Length: > 0 } e ? e : DefaultEndpoint;

    private static MicroagentException Bad(string text, string why) =>
        new(ErrorKind.Invalid, $"model reference '{text}' is not valid: {why}", "examples: hf.co/ggml-org/models@main/tinyllamas/stories260K.gguf, ./model.gguf") { Field = "model" };

    [GeneratedRegex(@"^(?<org>[A-Za-z0-9][A-Za-z0-9._-]{0,95})/(?<repo>[A-Za-z0-9][A-Za-z0-9._-]{0,95})(@(?<rev>[A-Za-z0-9][A-Za-z0-9._/-]{0,199}?))?/(?<file>[A-Za-z0-9._/-]{1,400})$")]
    private static partial Regex HfRef();
}
