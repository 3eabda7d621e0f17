using System.Text.Json;

namespace Microagent.Models.Mediation;

/// <summary>
/// The error body of the OpenAI API (platform.openai.com/docs/guides/error-codes): <c>{"error":{"message","type","code"}}</c>, so
/// OpenAI client libraries in the guest surface the mediator's refusals as ordinary API errors. Written with
/// <see cref="Utf8JsonWriter"/> (no reflection).
/// </summary>
internal static class OpenAiErrorWire
{
    /// <summary>The body for <paramref name="message"/> with <paramref name="type"/> and <paramref name="code"/>.</summary>
    public static byte[] Body(string message, string type, string code)
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("error");
            w.WriteString("message", message);
            w.WriteString("type", type);
            w.WriteString("code", code);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
