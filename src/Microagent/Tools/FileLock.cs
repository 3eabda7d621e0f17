namespace Microagent.Tools;

/// <summary>
/// An exclusive lock held as an open lock file (<see cref="FileShare.None"/>). Other processes and
/// other instances in this process wait; the lock is released when disposed or when the process dies.
/// </summary>
internal sealed class FileLock : IDisposable
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

    /// <summary>Waits at most <paramref name="limit"/>; null when another holder kept the lock that long.</summary>
    public static async Task<FileLock?> AcquireAsync(string path, TimeSpan limit, CancellationToken ct = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try { return await AcquireAsync(path, cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return null; }
    }

    /// <summary>Takes the lock if it is free right now; null when another holder has it.</summary>
    public static FileLock? TryAcquire(string path)
    {
        StatePaths.EnsureDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new FileLock(new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }));
        }
        catch (IOException) { return null; }
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
