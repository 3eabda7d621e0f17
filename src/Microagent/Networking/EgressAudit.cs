using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microagent.Tools;

namespace Microagent.Networking;

/// <summary>One egress decision, one line of <c>&lt;ws&gt;/egress.jsonl</c>: no payloads, no secrets.</summary>
public sealed record EgressRecord
{
    /// <summary>When the decision was made.</summary>
    public DateTimeOffset Time { get; init; }
    /// <summary><c>connect</c>, <c>dns</c> or <c>publish</c> (a published-port connection from the host).</summary>
    public required string Kind { get; init; }
    /// <summary><c>allowed</c> or <c>refused</c>.</summary>
    public required string Verdict { get; init; }
    /// <summary>The rule that decided (<see cref="EgressPolicy"/>), or what refused it (a cap, a dial failure).</summary>
    public required string Rule { get; init; }
    /// <summary>The name: the one the host knows the address by (connect) or the one asked for (dns).</summary>
    public string? Name { get; init; }
    /// <summary>Destination address (connect) or the addresses answered (dns, comma-separated).</summary>
    public string? Ip { get; init; }
    /// <summary>Destination port.</summary>
    public int? Port { get; init; }
    /// <summary>Bytes from the guest to the destination.</summary>
    public long BytesOut { get; init; }
    /// <summary>Bytes from the destination to the guest.</summary>
    public long BytesIn { get; init; }
    /// <summary>Milliseconds from the decision to the connection's end.</summary>
    public long DurationMs { get; init; }
    /// <summary>How an allowed connection ended when it was not an ordinary close (<c>max-total-bytes</c>, <c>severed</c>, <c>reset</c>).</summary>
    public string? End { get; init; }
}

/// <summary>
/// The egress audit log (docs/ARCHITECTURE.md "Networking"): appended by the broker, one JSON line per decision, 0600.
/// A refused or answered request is written at once; an allowed connection when it ends (with its byte counts). The file
/// is bounded (<see cref="JsonlAuditFile{T}.MaxBytes"/>): past it records are counted, not written, so a guest cannot fill
/// the host disk. The writing is <see cref="JsonlAuditFile{T}"/>'s.
/// </summary>
internal sealed class EgressAudit(string path, Action<string>? log = null)
    : JsonlAuditFile<EgressRecord>(path, EgressJson.Default.EgressRecord, "egress audit", log)
{
    /// <summary>Reads the records of <paramref name="path"/>; with <paramref name="follow"/>, waits for more until cancelled (or <paramref name="stillActive"/> says stop).</summary>
    public static async IAsyncEnumerable<EgressRecord> ReadAsync(string path, bool follow, Func<bool>? stillActive = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        long offset = 0;
        var pending = new StringBuilder();
        while (!ct.IsCancellationRequested)
        {
            if (File.Exists(path))
            {
                using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (f.Length < offset) offset = 0;
                f.Seek(offset, SeekOrigin.Begin);
                using var reader = new StreamReader(f, Encoding.UTF8);
                string rest = await reader.ReadToEndAsync(ct).ConfigureAwait(false);
                offset = f.Position;
                pending.Append(rest);
                string all = pending.ToString();
                int last = all.LastIndexOf('\n');
                pending.Clear();
                if (last >= 0) pending.Append(all[(last + 1)..]); else pending.Append(all);
                foreach (string line in (last >= 0 ? all[..last] : "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    EgressRecord? r = null;
                    try { r = JsonSerializer.Deserialize(line, EgressJson.Default.EgressRecord); } catch (JsonException) { }
                    if (r is not null) yield return r;
                }
            }
            if (!follow || (stillActive is not null && !stillActive())) yield break;
            try { await Task.Delay(200, ct).ConfigureAwait(false); } catch (OperationCanceledException) { yield break; }
        }
    }
}

/// <summary>Source-generated JSON of the audit lines.</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(EgressRecord))]
internal sealed partial class EgressJson : JsonSerializerContext;
