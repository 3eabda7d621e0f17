using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using ModelContextProtocol.Protocol;

namespace Microagent.Mcp;

/// <summary>
/// Tool results: success is <c>{ok: true, result, meta: {timing_ms}}</c>; failure is a tool error whose
/// structured content is <c>{ok: false, error: {kind, message, remediation, retryable}, meta}</c> — the
/// same error object as the CLI's <c>--json</c>.
/// </summary>
public static class Envelope
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = false };

    /// <summary>A successful call.</summary>
    public static CallToolResult Ok(JsonNode? result, long timingMs)
    {
        var body = new JsonObject { ["ok"] = true, ["result"] = result, ["meta"] = Meta(timingMs) };
        return Build(body, isError: false);
    }

    /// <summary>A failed call.</summary>
    public static CallToolResult Error(MicroagentException e, long timingMs)
    {
        var body = new JsonObject { ["ok"] = false, ["error"] = ErrorObject(e), ["meta"] = Meta(timingMs) };
        return Build(body, isError: true);
    }

    /// <summary>The error object shared with the CLI's <c>--json</c>.</summary>
    public static JsonObject ErrorObject(MicroagentException e) => new()
    {
        ["kind"] = e.Kind.WireName(),
        ["message"] = e.Message,
        ["remediation"] = e.Remediation,
        ["retryable"] = e.Retryable,
    };

    private static JsonObject Meta(long timingMs) => new() { ["timing_ms"] = timingMs };

    private static CallToolResult Build(JsonObject body, bool isError)
    {
        string text = body.ToJsonString(Options);
        return new CallToolResult
        {
            IsError = isError,
            StructuredContent = JsonSerializer.SerializeToElement(body, Options),
            Content = [new TextContentBlock { Text = text }],
        };
    }
}
