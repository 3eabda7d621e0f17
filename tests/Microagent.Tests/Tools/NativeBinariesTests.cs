using Microagent.Tools;

namespace Microagent.Tests.Tools;

public sealed class NativeBinariesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-native-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void EnsureExecutable_adds_the_execute_bits_a_package_extraction_dropped()
    {
        string file = Path.Combine(_dir, "microagent");
        File.WriteAllText(file, "#!/bin/sh\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);

        Assert.Equal(file, NativeBinaries.EnsureExecutable(file));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute,
            File.GetUnixFileMode(file));
    }

    [Fact]
    public void The_package_layout_of_a_build_is_searched_after_the_program_directory()
    {
        var dirs = NativeBinaries.SearchDirectories().ToList();
        Assert.Equal(AppContext.BaseDirectory, dirs[0]);
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"), dirs[1]);
        Assert.Null(NativeBinaries.Find($"no-such-binary-{Guid.NewGuid():N}"));
    }
}
