namespace Microagent.Tests;

public sealed class StatePathsTests
{
    [Fact]
    public void Directories_are_0700_and_files_0600_and_writes_are_atomic()
    {
        string root = Path.Combine(Path.GetTempPath(), "ma-state-" + Guid.NewGuid().ToString("N"));
        try
        {
            var paths = new StatePaths(root);
            string dir = StatePaths.EnsureDirectory(Path.Combine(paths.Workspaces, "w"));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            string file = Path.Combine(dir, "state.json");
            StatePaths.WriteAtomic(file, "{\"a\":1}");
            StatePaths.WriteAtomic(file, "{\"a\":2}");
            Assert.Equal("{\"a\":2}", File.ReadAllText(file));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            Assert.Single(Directory.GetFiles(dir));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }
}

/// <summary>The state directory from <c>$MICROAGENT_STATE_DIR</c>: sets a process-wide variable, so it runs alone.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class StatePathsEnvironmentTests
{
    [Fact]
    public void Environment_variable_selects_the_root()
    {
        string? old = Environment.GetEnvironmentVariable(StatePaths.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(StatePaths.EnvironmentVariable, "/tmp/ma-env-root");
            Assert.Equal("/tmp/ma-env-root", new StatePaths().Root);
            Assert.Equal("/tmp/explicit", new StatePaths("/tmp/explicit").Root);
        }
        finally { Environment.SetEnvironmentVariable(StatePaths.EnvironmentVariable, old); }
    }
}
