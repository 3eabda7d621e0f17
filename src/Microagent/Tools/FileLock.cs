namespace Microagent.Tools;

/// <summary>
/// An exclusive lock held as an open lock file (<see cref="FileShare.None"/>). Other processes and
/// other instances in this process wait; the lock is released when disposed or when the process dies.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly FileStream _stream;

    private FileLock(FileStream stream) => _stream = stream;

    /// <summary>Waits until the lock at <paramref name="path"/> is held by the caller.</summary>
    public static async Task<FileLock> AcquireAsync(string path, CancellationToken ct = default)
    {
        StatePaths.EnsureDirectory(Path.GetDirectoryName(path)!);
        int delayMs = 10;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                var fs = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.OpenOrCreate,
                    Access = FileAccess.ReadWrite,
                    Share = FileShare.None,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
                return new FileLock(fs);
            }
            catch (IOException) when (File.Exists(path))
            {
                await Task.Delay(delayMs, ct).ConfigureAwait(false);
                delayMs = Math.Min(delayMs * 2, 250);
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
