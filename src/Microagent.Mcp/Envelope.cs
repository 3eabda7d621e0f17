using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using ModelContextProtocol.Protocol;

namespace Microagent.Mcp;

/// <summary>
/// Tool results: success is <c>{ok: true, result, meta: {timing_ms}}</c>; failure is a tool error whose
/// structured content is <c>{ok: false, error: {kind, message, remediation, retryable, field}, meta}</c> — the
/// same error object as the CLI's <c>--json</c>. The same JSON is also the text content, for clients older than structured content.
/// </summary>
public static class Envelope
{
    /// <summary>A successful call.</summary>
    public static CallToolResult Ok(JsonNode? result, long timingMs)
    {
        var body = new JsonObject { ["ok"] = true, ["result"] = result, ["meta"] = Meta(timingMs) };
        return Build(body, isError: false);
    }

    /// <summary>A failed call.</summary>
    public static CallToolResult Error(MappedError e, long timingMs)
    {
        var body = new JsonObject { ["ok"] = false, ["error"] = ErrorObject(e), ["meta"] = Meta(timingMs) };
        return Build(body, isError: true);
    }

    /// <summary>A failed call.</summary>
    public static CallToolResult Error(MicroagentException e, long timingMs) => Error(ErrorMapping.FromException(e), timingMs);

    /// <summary>The error object shared with the CLI's <c>--json</c>.</summary>
    public static JsonObject ErrorObject(MappedError e) => new()
    {
        ["kind"] = e.Kind.WireName(),
        ["message"] = e.Message,
        ["remediation"] = e.Remediation,
        ["retryable"] = e.Retryable,
        ["field"] = e.Field,
    };

    /// <summary>The outputSchema of a tool whose successful <c>result</c> follows <paramref name="result"/>.</summary>
    public static JsonObject Schema(JsonObject result)
    {
        var nullableString = new JsonObject { ["type"] = new JsonArray("string", "null") };
        var error = new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["kind"] = new JsonObject { ["enum"] = new JsonArray([.. Enum.GetValues<ErrorKind>().Select(k => (JsonNode)k.WireName())]) },
                ["message"] = new JsonObject { ["type"] = "string" },
                ["remediation"] = nullableString.DeepClone(),
                ["retryable"] = new JsonObject { ["type"] = "boolean" },
                ["field"] = nullableString.DeepClone(),
            },
            ["required"] = new JsonArray("kind", "message", "retryable"),
        };
        var meta = new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject { ["timing_ms"] = new JsonObject { ["type"] = "integer", ["minimum"] = 0 } },
            ["required"] = new JsonArray("timing_ms"),
        };
        return new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["ok"] = new JsonObject { ["type"] = "boolean" },
                ["result"] = Rebase(result.DeepClone(), "#/properties/result"),
                ["error"] = error,
                ["meta"] = meta,
            },
            ["required"] = new JsonArray("ok", "meta"),
            ["oneOf"] = new JsonArray(
                Branch(true, "result"), Branch(false, "error")),
        };
    }

    // Success has a result, failure an error. The branch names the property again (any value: the top level constrains it),
    // so that strict validators find every required property defined beside it.
    private static JsonObject Branch(bool ok, string member) => new()
    {
        ["properties"] = new JsonObject { ["ok"] = new JsonObject { ["const"] = ok }, [member] = new JsonObject() },
        ["required"] = new JsonArray(member),
    };

    /// <summary>
    /// Rewrites the local <c>$ref</c> pointers of a schema moved under <paramref name="at"/> (the exporter points repeated
    /// types at their first occurrence, relative to its own root).
    /// </summary>
    internal static JsonNode Rebase(JsonNode schema, string at)
    {
        switch (schema)
        {
            case JsonObject o:
                foreach (var (key, value) in o.ToList())
                {
                    if (key == "$ref" && value?.GetValueKind() == JsonValueKind.String && value.GetValue<string>() is { } r && r.StartsWith('#'))
                        o[key] = at + r[1..];
                    else if (value is not null) Rebase(value, at);
                }
                break;
            case JsonArray a:
                foreach (var item in a) if (item is not null) Rebase(item, at);
                break;
        }
        return schema;
    }

    private static JsonObject Meta(long timingMs) => new() { ["timing_ms"] = timingMs };

    private static CallToolResult Build(JsonObject body, bool isError)
    {
        string text = body.ToJsonString();
        using var doc = JsonDocument.Parse(text);
        return new CallToolResult
        {
            IsError = isError,
            StructuredContent = doc.RootElement.Clone(),
            Content = [new TextContentBlock { Text = text }],
        };
    }
}
