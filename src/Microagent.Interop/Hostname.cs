using System.Runtime.InteropServices;
using System.Text;

namespace Microagent.Interop;

/// <summary>sethostname(2).</summary>
internal static unsafe partial class Hostname
{
    [LibraryImport(Libc.Name, EntryPoint = "sethostname", SetLastError = true)]
    private static partial int SetHostnameRaw(byte* name, nuint len);

    /// <summary>Sets the UTS hostname.</summary>
    public static void Set(string name)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(name);
        fixed (byte* p = bytes) Libc.Check(SetHostnameRaw(p, (nuint)bytes.Length), "sethostname");
    }
}
