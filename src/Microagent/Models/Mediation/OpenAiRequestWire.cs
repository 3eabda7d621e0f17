using System.Text;
using System.Text.Json;

namespace Microagent.Models.Mediation;

/// <summary>What the mediator reads from an OpenAI-style request body (read, never stored: the text itself is only counted).</summary>
/// <param name="Model">The <c>model</c> member.</param>
/// <param name="Stream">The <c>stream</c> member is true.</param>
/// <param name="MaxTokens"><c>max_tokens</c>, else <c>max_completion_tokens</c>, else <c>max_output_tokens</c>.</param>
/// <param name="MessageCount">Entries of <c>messages</c> (chat) or of an <c>input</c> array of items (responses).</param>
/// <param name="TextBytes">UTF-8 bytes of the prompt text.</param>
/// <param name="ToolNames">Names of the tools and functions offered.</param>
internal sealed record OpenAiRequestFields(string? Model, bool Stream, long? MaxTokens, int MessageCount, long TextBytes, IReadOnlyList<string> ToolNames);

/// <summary>
/// The request bodies of the OpenAI API as llama.cpp's server, vLLM and Ollama speak them (platform.openai.com/docs/api-reference:
/// chat/create, completions/create, embeddings/create, responses/create). Prompt text is what a client sends for the model to read:
/// <c>messages[].content</c> (a string, or parts whose <c>text</c> is counted), <c>prompt</c> (string or list), <c>input</c>
/// (embeddings and responses: string, list of strings, or items with <c>content</c>), <c>instructions</c> and <c>system</c>.
/// Tool names: <c>tools[].function.name</c>, <c>tools[].name</c>, <c>functions[].name</c>.
/// </summary>
internal static class OpenAiRequestWire
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64, AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow };

    /// <summary>The fields of <paramref name="body"/>; an empty body gives empty fields; a body that is not a JSON object throws <see cref="JsonException"/>.</summary>
    public static OpenAiRequestFields Read(ReadOnlyMemory<byte> body)
    {
        if (body.IsEmpty) return new(null, false, null, 0, 0, []);
        using var doc = JsonDocument.Parse(body, Options);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new JsonException("the request body is not a JSON object");
        string? model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        bool stream = root.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        long? maxTokens = Number(root, "max_tokens") ?? Number(root, "max_completion_tokens") ?? Number(root, "max_output_tokens");
        int messages = 0;
        long text = 0;
        if (root.TryGetProperty("messages", out var msgs) && msgs.ValueKind == JsonValueKind.Array)
            foreach (var msg in msgs.EnumerateArray())
            {
                messages++;
                if (msg.ValueKind == JsonValueKind.Object && msg.TryGetProperty("content", out var content)) text += ContentBytes(content);
            }
        if (root.TryGetProperty("prompt", out var prompt)) text += Strings(prompt);
        if (root.TryGetProperty("input", out var input))
        {
            if (input.ValueKind == JsonValueKind.Array && input.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.Object)) messages += input.GetArrayLength();
            text += input.ValueKind == JsonValueKind.Array
                ? input.EnumerateArray().Sum(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var c) ? ContentBytes(c) : Strings(e))
                : Strings(input);
        }
        foreach (string key in (string[])["instructions", "system"])
            if (root.TryGetProperty(key, out var v)) text += ContentBytes(v);
        var tools = new List<string>();
        foreach (string key in (string[])["tools", "functions"])
            if (root.TryGetProperty(key, out var list) && list.ValueKind == JsonValueKind.Array)
                foreach (var t in list.EnumerateArray())
                    if (ToolName(t) is { } name) tools.Add(name);
        return new(model, stream, maxTokens, messages, text, tools);
    }

    private static string? ToolName(JsonElement t)
    {
        if (t.ValueKind != JsonValueKind.Object) return null;
        if (t.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object && f.TryGetProperty("name", out var fn) && fn.ValueKind == JsonValueKind.String)
            return fn.GetString();
        return t.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
    }

    private static long? Number(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
            ? v.TryGetInt64(out long n) ? n : long.MaxValue
            : null;

    /// <summary>A message's content: a string, or parts (<c>{"type":"text","text":...}</c>, <c>input_text</c>) whose text is counted.</summary>
    private static long ContentBytes(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => Utf8(content),
        JsonValueKind.Array => content.EnumerateArray().Sum(p => p.ValueKind switch
        {
            JsonValueKind.String => Utf8(p),
            JsonValueKind.Object when p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String => Utf8(t),
            _ => 0,
        }),
        _ => 0,
    };

    /// <summary>A string or a (nested) list of strings; token-id lists count nothing.</summary>
    private static long Strings(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => Utf8(e),
        JsonValueKind.Array => e.EnumerateArray().Sum(Strings),
        _ => 0,
    };

    private static long Utf8(JsonElement s) => Encoding.UTF8.GetByteCount(s.GetString() ?? "");
}
