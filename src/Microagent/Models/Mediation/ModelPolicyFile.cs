using System.Globalization;
using Microagent.Errors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Microagent.Models.Mediation;

/// <summary>
/// A model policy file (<c>--model-policy-file</c>; YAML, or JSON, which is YAML), schema <c>microagent.model_policy.v1</c>:
/// <code>
/// schema_version: microagent.model_policy.v1   # required, exactly this
/// default: deny                                # allow | deny (default deny)
/// rules:                                       # tried in order; the first whose match fits decides
///   - id: small-chat                           # required, unique: letters, digits, '.', '_', '-'
///     effect: allow                            # required: allow | deny
///     match:                                   # each a pattern or a list of them (glob: * and ?); absent: any
///       workspace, capability, worker, method, path, model
///     limits:                                  # allow rules only; a request past one is denied
///       max_request_bytes, max_text_bytes, max_messages, max_tokens, stream (bool), tools (list of names)
/// </code>
/// Unknown fields are errors naming their path (<c>rules[1].match.modle</c>) and line. Walked as YAML nodes (no reflection:
/// NativeAOT-safe), as <c>EgressPolicyFile</c> is.
/// </summary>
internal static class ModelPolicyFile
{
    private static readonly string[] TopKeys = ["schema_version", "default", "rules"];
    private static readonly string[] RuleKeys = ["id", "effect", "match", "limits"];
    private static readonly string[] MatchKeys = ["workspace", "capability", "worker", "method", "path", "model"];
    private static readonly string[] LimitKeys = ["max_request_bytes", "max_text_bytes", "max_messages", "max_tokens", "stream", "tools"];

    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    public static ModelPolicy Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MicroagentException(ErrorKind.Invalid, $"cannot read the model policy {path}: {e.Message}", "give a readable policy file")
            { Field = "model_policy_file" };
        }
        return Parse(text, path);
    }

    /// <summary>Parses policy text; <paramref name="source"/> names it in errors.</summary>
    public static ModelPolicy Parse(string text, string source)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw Error(source, e.Start.Line, "", (e.InnerException ?? e).Message); }
        if (stream.Documents.Count == 0) throw Error(source, 1, "", "the policy is empty");
        if (stream.Documents.Count > 1) throw Error(source, stream.Documents[1].RootNode.Start.Line, "", "one policy document per file");
        if (stream.Documents[0].RootNode is not YamlMappingNode root) throw Error(source, stream.Documents[0].RootNode.Start.Line, "", "the policy must be a mapping");
        var fields = Fields(source, root, "", TopKeys);
        if (!fields.TryGetValue("schema_version", out var sv)) throw Error(source, root.Start.Line, "schema_version", $"required: {ModelPolicy.SchemaVersion}");
        if (Scalar(source, sv, "schema_version") != ModelPolicy.SchemaVersion)
            throw Error(source, sv.Start.Line, "schema_version", $"'{Scalar(source, sv, "schema_version")}' is not {ModelPolicy.SchemaVersion}");
        var @default = fields.TryGetValue("default", out var d) ? Effect(source, d, "default") : ModelPolicyEffect.Deny;
        var rules = new List<ModelPolicyRule>();
        var seen = new Dictionary<string, long>(StringComparer.Ordinal);
        if (fields.TryGetValue("rules", out var rs))
        {
            if (rs is YamlScalarNode { Value: null or "" }) { }
            else if (rs is not YamlSequenceNode seq) throw Error(source, rs.Start.Line, "rules", "expected a list of rules");
            else
                for (int i = 0; i < seq.Children.Count; i++)
                {
                    var rule = Rule(source, seq.Children[i], $"rules[{i}]");
                    if (seen.TryGetValue(rule.Id, out long first))
                        throw Error(source, seq.Children[i].Start.Line, $"rules[{i}].id", $"'{rule.Id}' is already the id of the rule on line {first}");
                    seen[rule.Id] = seq.Children[i].Start.Line;
                    rules.Add(rule);
                }
        }
        return new ModelPolicy(@default, rules);
    }

    private static ModelPolicyRule Rule(string source, YamlNode node, string path)
    {
        if (node is not YamlMappingNode m) throw Error(source, node.Start.Line, path, "a rule must be a mapping (id, effect, match, limits)");
        var f = Fields(source, m, path, RuleKeys);
        if (!f.TryGetValue("id", out var idNode)) throw Error(source, m.Start.Line, path + ".id", "required");
        string id = Scalar(source, idNode, path + ".id");
        if (id.Length is 0 or > 128 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            throw Error(source, idNode.Start.Line, path + ".id", $"'{id}' is not an id (letters, digits, '.', '_', '-')");
        if (!f.TryGetValue("effect", out var eff)) throw Error(source, m.Start.Line, path + ".effect", "required: allow or deny");
        var effect = Effect(source, eff, path + ".effect");
        var match = f.TryGetValue("match", out var mn) ? Match(source, mn, path + ".match") : new ModelPolicyMatch();
        ModelPolicyLimits? limits = null;
        if (f.TryGetValue("limits", out var ln))
        {
            if (effect == ModelPolicyEffect.Deny) throw Error(source, ln.Start.Line, path + ".limits", "limits belong to allow rules (a deny rule denies whatever it matches)");
            limits = Limits(source, ln, path + ".limits");
        }
        return new ModelPolicyRule(id, effect, match, limits);
    }

    private static ModelPolicyMatch Match(string source, YamlNode node, string path)
    {
        if (node is YamlScalarNode { Value: null or "" }) return new ModelPolicyMatch();
        if (node is not YamlMappingNode m) throw Error(source, node.Start.Line, path, $"expected a mapping ({string.Join(", ", MatchKeys)})");
        var f = Fields(source, m, path, MatchKeys);
        IReadOnlyList<string> Get(string key) => f.TryGetValue(key, out var v) ? Patterns(source, v, $"{path}.{key}") : [];
        var capability = Get("capability");
        if (capability.FirstOrDefault(c => !ModelCapabilities.All.Any(k => Glob.Matches(c, k))) is { } bad)
            throw Error(source, f["capability"].Start.Line, path + ".capability", $"'{bad}' matches no capability ({string.Join(", ", ModelCapabilities.All)})");
        var method = Get("method");
        if (method.FirstOrDefault(x => !x.All(c => Http1.IsTokenChar(c) || c is '*' or '?')) is { } badMethod)
            throw Error(source, f["method"].Start.Line, path + ".method", $"'{badMethod}' is not an HTTP method");
        return new ModelPolicyMatch
        {
            Workspace = Get("workspace"), Capability = capability, Worker = Get("worker"),
            Method = method, Path = Get("path"), Model = Get("model"),
        };
    }

    private static ModelPolicyLimits Limits(string source, YamlNode node, string path)
    {
        if (node is YamlScalarNode { Value: null or "" }) return new ModelPolicyLimits();
        if (node is not YamlMappingNode m) throw Error(source, node.Start.Line, path, $"expected a mapping ({string.Join(", ", LimitKeys)})");
        var f = Fields(source, m, path, LimitKeys);
        long? N(string key) => f.TryGetValue(key, out var v) ? Number(source, v, $"{path}.{key}") : null;
        return new ModelPolicyLimits
        {
            MaxRequestBytes = N("max_request_bytes"), MaxTextBytes = N("max_text_bytes"), MaxMessages = N("max_messages"), MaxTokens = N("max_tokens"),
            Stream = f.TryGetValue("stream", out var s) ? Bool(source, s, path + ".stream") : null,
            Tools = f.TryGetValue("tools", out var t) ? Patterns(source, t, path + ".tools", allowEmpty: true) : null,
        };
    }

    /// <summary>The mapping's fields by name; a key not in <paramref name="keys"/> or given twice is an error naming its path.</summary>
    private static Dictionary<string, YamlNode> Fields(string source, YamlMappingNode m, string path, string[] keys)
    {
        var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in m.Children)
        {
            string key = Scalar(source, k, path);
            string at = path.Length == 0 ? key : $"{path}.{key}";
            if (!keys.Contains(key)) throw Error(source, k.Start.Line, at, $"unknown field (fields here: {string.Join(", ", keys)})");
            if (!fields.TryAdd(key, v)) throw Error(source, k.Start.Line, at, "given twice");
        }
        return fields;
    }

    private static IReadOnlyList<string> Patterns(string source, YamlNode node, string path, bool allowEmpty = false)
    {
        List<string> list = node switch
        {
            YamlSequenceNode seq => [.. seq.Children.Select((n, i) => Scalar(source, n, $"{path}[{i}]"))],
            YamlScalarNode s when s.Value is { Length: > 0 } => [s.Value],
            _ => allowEmpty && node is YamlScalarNode ? [] : throw Error(source, node.Start.Line, path, "expected a pattern or a list of them"),
        };
        if (list.Count == 0 && !allowEmpty) throw Error(source, node.Start.Line, path, "an empty list matches nothing: leave the field out to match any");
        if (list.Any(string.IsNullOrEmpty)) throw Error(source, node.Start.Line, path, "an empty pattern");
        return list;
    }

    private static string Scalar(string source, YamlNode node, string path) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw Error(source, node.Start.Line, path, "expected a single value here");

    private static ModelPolicyEffect Effect(string source, YamlNode node, string path) => Scalar(source, node, path) switch
    {
        "allow" => ModelPolicyEffect.Allow,
        "deny" => ModelPolicyEffect.Deny,
        var v => throw Error(source, node.Start.Line, path, $"'{v}' is not allow or deny"),
    };

    private static long Number(string source, YamlNode node, string path) =>
        long.TryParse(Scalar(source, node, path), NumberStyles.None, CultureInfo.InvariantCulture, out long v)
            ? v : throw Error(source, node.Start.Line, path, $"'{Scalar(source, node, path)}' is not a whole number");

    private static bool Bool(string source, YamlNode node, string path) => Scalar(source, node, path) switch
    {
        "true" => true,
        "false" => false,
        var v => throw Error(source, node.Start.Line, path, $"'{v}' is not true or false"),
    };

    private static MicroagentException Error(string source, long line, string path, string message) =>
        new(ErrorKind.Invalid, $"{source}:{line}: {(path.Length > 0 ? path + ": " : "")}{message}",
            $"see the schema {ModelPolicy.SchemaVersion} in README.md \"Model policy\" (microagent model policy validate FILE checks a file)")
        { Field = "model_policy_file" };
}
