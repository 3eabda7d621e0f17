using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization.Metadata;

namespace Microagent.Mcp;

/// <summary>Small builders for precise JSON Schemas (draft 2020-12 subset that MCP clients validate).</summary>
public static class Schema
{
    private static readonly JsonSchemaExporterOptions Exporter = new() { TreatNullObliviousAsNonNullable = true };

    /// <summary>
    /// The schema of what <paramref name="type"/> serializes to (exported from the same source-generated metadata that
    /// writes the results, so it is true by construction).
    /// </summary>
    public static JsonObject Of<T>(JsonTypeInfo<T> type) => type.GetJsonSchemaAsNode(Exporter).AsObject();

    /// <summary>An object with the given properties; unknown properties are rejected.</summary>
    public static JsonObject Object(JsonObject properties, params string[] required)
    {
        var o = new JsonObject { ["type"] = "object", ["properties"] = properties, ["additionalProperties"] = false };
        if (required.Length > 0) o["required"] = new JsonArray(required.Select(r => (JsonNode)r).ToArray());
        return o;
    }

    /// <summary>A string, optionally limited to <paramref name="values"/>.</summary>
    public static JsonObject String(string description, params string[] values)
    {
        var o = new JsonObject { ["type"] = "string", ["description"] = description };
        if (values.Length > 0) o["enum"] = new JsonArray(values.Select(v => (JsonNode)v).ToArray());
        return o;
    }

    /// <summary>An integer within a workspace limit (the range the library enforces: one source for both).</summary>
    public static JsonObject Integer(string description, Microagent.Workspaces.WorkspaceLimit limit) =>
        Integer(description, limit.Min, limit.Bounded ? limit.Max : null);

    /// <summary>An integer in [min, max].</summary>
    public static JsonObject Integer(string description, long minimum = 0, long? maximum = null)
    {
        var o = new JsonObject { ["type"] = "integer", ["description"] = description, ["minimum"] = minimum };
        if (maximum is { } m) o["maximum"] = m;
        return o;
    }

    /// <summary>A boolean.</summary>
    public static JsonObject Boolean(string description) => new() { ["type"] = "boolean", ["description"] = description };

    /// <summary>An array of strings.</summary>
    public static JsonObject Strings(string description, int minItems = 0) =>
        new() { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" }, ["minItems"] = minItems, ["description"] = description };

    /// <summary>An object whose values are strings (e.g. environment variables).</summary>
    public static JsonObject StringMap(string description) =>
        new() { ["type"] = "object", ["additionalProperties"] = new JsonObject { ["type"] = "string" }, ["description"] = description };
}

/// <summary>Small helpers for building schemas.</summary>
internal static class JsonObjectExtensions
{
    /// <summary>Applies <paramref name="edit"/> to <paramref name="o"/> and returns it (for object initialisers).</summary>
    public static JsonObject With(this JsonObject o, Action<JsonObject> edit)
    {
        edit(o);
        return o;
    }
}
