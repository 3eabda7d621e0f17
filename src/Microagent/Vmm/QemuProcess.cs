using System.Diagnostics;
using System.Text;
using Microagent.Errors;

namespace Microagent.Vmm;

/// <summary>
/// A running qemu-system process. Invariants: QEMU never outlives its owner — it is started through
/// <c>setpriv --pdeathsig KILL</c> from a dedicated thread that lives exactly as long as QEMU (the
/// parent-death signal fires when the creating thread exits, so a pool thread must not create it);
/// <see cref="DisposeAsync"/> kills it and waits for it.
/// </summary>
internal sealed class QemuProcess : IAsyncDisposable
{
    private const int StderrLimit = 64 * 1024;
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly StringBuilder _stderr = new();
    private Process? _process;

    private QemuProcess() { }

    /// <summary>Process id of QEMU (of setpriv, which execs QEMU in place).</summary>
    public int Pid { get; private set; }

    /// <summary>Completes with QEMU's exit code.</summary>
    public Task<int> Exited => _exited.Task;

    /// <summary>What QEMU wrote on stderr (bounded).</summary>
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Starts <paramref name="qemuBinary"/> with <paramref name="args"/>.</summary>
    public static QemuProcess Start(string qemuBinary, IReadOnlyList<string> args, string workingDirectory)
    {
        var qp = new QemuProcess();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var owner = new Thread(() => qp.Own(qemuBinary, args, workingDirectory, started))
        {
            IsBackground = true,
            Name = "qemu-owner",
        };
        owner.Start();
        started.Task.GetAwaiter().GetResult();
        return qp;
    }

    private void Own(string qemuBinary, IReadOnlyList<string> args, string workingDirectory, TaskCompletionSource started)
    {
        try
        {
            string? setpriv = QemuInstallation.FindOnPath("setpriv");
            var psi = new ProcessStartInfo(setpriv ?? qemuBinary)
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            if (setpriv is not null)
            {
                psi.ArgumentList.Add("--pdeathsig");
                psi.ArgumentList.Add("KILL");
                psi.ArgumentList.Add("--");
                psi.ArgumentList.Add(qemuBinary);
            }
            foreach (string arg in args) psi.ArgumentList.Add(arg);
            var p = new Process { StartInfo = psi };
            p.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (_stderr) if (_stderr.Length < StderrLimit) _stderr.AppendLine(e.Data);
            };
            p.OutputDataReceived += (_, _) => { };
            p.Start();
            p.StandardInput.Close();
            p.BeginErrorReadLine();
            p.BeginOutputReadLine();
            _process = p;
            Pid = p.Id;
            started.SetResult();
            p.WaitForExit();
            _exited.TrySetResult(p.ExitCode);
        }
        catch (Exception e)
        {
            var error = MicroagentException.Permanent($"cannot start QEMU: {e.Message}", "run `microagent doctor`", e);
            if (!started.TrySetException(error)) _exited.TrySetException(error);
        }
    }

    /// <summary>Sends SIGKILL to QEMU (no-op when it has exited).</summary>
    public void Kill()
    {
        try { if (_process is { HasExited: false }) _process.Kill(); }
        catch (InvalidOperationException) { }
    }

    /// <summary>Waits up to <paramref name="grace"/> for QEMU to exit by itself, then kills it and waits.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (await Task.WhenAny(Exited, Task.Delay(grace)).ConfigureAwait(false) != Exited) Kill();
        try { await Exited.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false); }
        catch (TimeoutException) { }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _process?.Dispose();
    }
}
