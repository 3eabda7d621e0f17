using System.Text.Json;
using Microagent.Errors;
using Microagent.Models.Mediation;

namespace Microagent.Models;

/// <summary>
/// What the model mediator knows about one guest request, and all a policy decides on (docs/ARCHITECTURE.md "Model mediation").
/// Taken from the request line and the JSON body only (never from a header the guest could forge); the prompt text itself is
/// counted (<see cref="TextBytes"/>), never kept.
/// </summary>
public sealed record ModelRequestFacts
{
    /// <summary>The mediator's id for the request (also sent upstream and back as <c>X-Microagent-Request-Id</c>).</summary>
    public string? RequestId { get; init; }
    /// <summary>The workspace the request came from.</summary>
    public required string Workspace { get; init; }
    /// <summary>The runner the request would reach (its registry id), when one is running.</summary>
    public string? Worker { get; init; }
    /// <summary>The HTTP method, as sent.</summary>
    public required string Method { get; init; }
    /// <summary>The request path, without its query.</summary>
    public required string Path { get; init; }
    /// <summary>What the path asks for (<see cref="ModelCapabilities"/>).</summary>
    public string Capability => ModelCapabilities.Of(Path);
    /// <summary>The body's <c>model</c>.</summary>
    public string? Model { get; init; }
    /// <summary>Whether the body asks for a streamed (SSE) response.</summary>
    public bool Stream { get; init; }
    /// <summary>The body's <c>max_tokens</c> (or <c>max_completion_tokens</c>, <c>max_output_tokens</c>); null when it sets none.</summary>
    public long? MaxTokens { get; init; }
    /// <summary>Messages in the body (chat <c>messages</c>, responses <c>input</c> items).</summary>
    public int MessageCount { get; init; }
    /// <summary>UTF-8 bytes of prompt text in the body.</summary>
    public long TextBytes { get; init; }
    /// <summary>Names of the tools the body offers the model.</summary>
    public IReadOnlyList<string> ToolNames { get; init; } = [];
    /// <summary>Bytes of the request on the wire (head and body).</summary>
    public long RequestBytes { get; init; }

    /// <summary>
    /// The facts of a request: <paramref name="target"/> is the path (a query is dropped), <paramref name="body"/> the JSON body
    /// (may be empty). A body that is not a JSON object is <see cref="ErrorKind.Invalid"/> (field <c>body</c>).
    /// </summary>
    public static ModelRequestFacts FromRequest(string workspace, string method, string target, ReadOnlyMemory<byte> body,
        long? requestBytes = null, string? worker = null, string? requestId = null)
    {
        OpenAiRequestFields fields;
        try { fields = OpenAiRequestWire.Read(body); }
        catch (JsonException e)
        {
            throw new MicroagentException(ErrorKind.Invalid, $"the request body is not a JSON object: {e.Message}", "send an OpenAI-style JSON request body")
            { Field = "body" };
        }
        return new ModelRequestFacts
        {
            RequestId = requestId,
            Workspace = workspace,
            Worker = worker,
            Method = method,
            Path = target.IndexOf('?') is var q and >= 0 ? target[..q] : target,
            Model = fields.Model,
            Stream = fields.Stream,
            MaxTokens = fields.MaxTokens,
            MessageCount = fields.MessageCount,
            TextBytes = fields.TextBytes,
            ToolNames = fields.ToolNames,
            RequestBytes = requestBytes ?? body.Length,
        };
    }
}

/// <summary>The capability a request path asks for; policy rules match on these names.</summary>
public static class ModelCapabilities
{
    /// <summary>Every capability name.</summary>
    public static IReadOnlyList<string> All { get; } = ["chat", "completions", "embeddings", "responses", "models", "tokenize", "health", "other"];

    /// <summary>
    /// <c>/v1/chat/completions</c> chat, <c>/v1/completions</c> (and llama.cpp's <c>/completion</c>) completions, <c>/v1/embeddings</c>
    /// (and <c>/embedding</c>) embeddings, <c>/v1/responses</c> responses, <c>/v1/models</c> and below models, <c>/tokenize</c> and
    /// <c>/detokenize</c> tokenize, <c>/health</c> health; anything else other. The <c>/v1</c> prefix is optional.
    /// </summary>
    public static string Of(string path)
    {
        string p = path.TrimEnd('/');
        if (p.StartsWith("/v1/", StringComparison.Ordinal)) p = p[3..];
        return p switch
        {
            "/chat/completions" => "chat",
            "/completions" or "/completion" => "completions",
            "/embeddings" or "/embedding" => "embeddings",
            "/responses" => "responses",
            "/models" => "models",
            "/tokenize" or "/detokenize" => "tokenize",
            "/health" => "health",
            _ when p.StartsWith("/models/", StringComparison.Ordinal) => "models",
            _ => "other",
        };
    }
}
