using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Microagent.Tools;

/// <summary>
/// An append-only JSON Lines audit file (0600), the one writer behind the egress and model audits (docs/ARCHITECTURE.md
/// "Networking", "Model mediation"): one line per record, appended under a lock; bounded at <see cref="MaxBytes"/> (further
/// records are counted, not written, and the drop is logged once) so a guest cannot fill the host disk. <see cref="Write"/>
/// never throws: an audit must not take its writer down; a failure is logged.
/// </summary>
/// <param name="path">The file.</param>
/// <param name="typeInfo">The records' source-generated JSON contract.</param>
/// <param name="label">What the file is called in log lines (<c>egress audit</c>, <c>model audit</c>).</param>
/// <param name="log">Where failures and the first drop are logged.</param>
internal class JsonlAuditFile<T>(string path, JsonTypeInfo<T> typeInfo, string label, Action<string>? log)
{
    /// <summary>Largest audit file; beyond it records are dropped (and the drop is logged once).</summary>
    public const long MaxBytes = 64L << 20;
    private readonly Lock _gate = new();
    private long _dropped;

    /// <summary>The file.</summary>
    public string Path { get; } = path;

    /// <summary>Records dropped because the file reached <see cref="MaxBytes"/>.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Appends one record (never throws; a failure is logged).</summary>
    public void Write(T record)
    {
        byte[] line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, typeInfo) + "\n");
        lock (_gate)
        {
            try
            {
                using var f = new FileStream(Path, new FileStreamOptions
                {
                    Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
                if (f.Length + line.Length > MaxBytes)
                {
                    if (Interlocked.Increment(ref _dropped) == 1) log?.Invoke($"{label} {Path} reached {MaxBytes >> 20} MiB: further records are dropped");
                    return;
                }
                f.Write(line);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log?.Invoke($"{label} write failed: {e.Message}"); }
        }
    }
}
