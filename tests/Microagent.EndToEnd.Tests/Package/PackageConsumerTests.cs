using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Xml.Linq;

namespace Microagent.EndToEnd.Tests.Package;

/// <summary>
/// The <c>Microagent</c> NuGet package as a .NET user gets it (docs/ARCHITECTURE.md "Package"): <c>make pack</c>, then a
/// fresh console project outside the repository that references the package from a local folder feed (its dependencies
/// from this user's NuGet package folder: restore needs no network), built with the SDK and run on a fresh state
/// directory with neither <c>MICROAGENT_BIN</c> nor a <c>bin/</c> beside it: create, start, exec, delete.
/// </summary>
public sealed class PackageConsumerTests
{
    private const string Program = """
        using System.Text;
        using Microagent;
        using Microagent.Diagnostics;
        using Microagent.Errors;
        using Microagent.Workspaces;

        var paths = new StatePaths(); // $MICROAGENT_STATE_DIR
        var prerequisites = await new Doctor(paths).CheckPrerequisitesAsync();
        foreach (var c in prerequisites.Checks) Console.WriteLine($"check {c.Name} {c.Status}");
        var manager = new WorkspaceManager(paths);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        try
        {
            var created = await manager.CreateAsync(new WorkspaceSpec { Name = "pkg", Profile = "tiny" }, cts.Token);
            Console.WriteLine($"created {created.State.WireName()}");
            var started = await manager.StartAsync("pkg", ct: cts.Token);
            Console.WriteLine($"started {started.State.WireName()}");
            var r = await manager.ExecAsync("pkg", new ExecOptions { Command = ["sh", "-c", "echo pkg-ok $((6*7)) $(uname -s)"] }, cts.Token);
            Console.Write(Encoding.UTF8.GetString(r.Stdout ?? []));
            Console.WriteLine($"exit {r.ExitCode}");
        }
        catch (MicroagentException e)
        {
            Console.WriteLine($"error {e.Kind.WireName()}: {e.Message} ({e.Remediation})");
            return 1;
        }
        finally
        {
            var deleted = await manager.DeleteAsync("pkg", new DeleteOptions { Force = true });
            Console.WriteLine($"deleted {deleted.Existed}");
        }
        return 0;
        """;

    [Fact]
    public async Task A_fresh_console_project_references_the_package_and_runs_a_workspace()
    {
        var pack = await RunAsync("make", ["pack"], MicroagentCli.RepoRoot, TimeSpan.FromMinutes(10));
        Assert.True(pack.Code == 0, $"make pack failed:\n{pack.Output}");
        string nupkg = Assert.Single(Directory.GetFiles(Path.Combine(MicroagentCli.RepoRoot, "build", "packages"), "Microagent.*.nupkg"));
        string version = Path.GetFileNameWithoutExtension(nupkg)["Microagent.".Length..];
        AssertPackageLayout(nupkg);

        string root = Path.Combine("/tmp", $"ma-pack-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Assert.False(root.StartsWith(MicroagentCli.RepoRoot, StringComparison.Ordinal));
        string feed = Path.Combine(root, "feed"), app = Path.Combine(root, "app"), state = Path.Combine(root, "state");
        Directory.CreateDirectory(feed);
        Directory.CreateDirectory(app);
        try
        {
            File.Copy(nupkg, Path.Combine(feed, Path.GetFileName(nupkg)));
            // Sources: the local feed, and this user's package folder (a folder feed too) for YamlDotNet; packages are
            // extracted into a folder of the test's own, so a stale Microagent of the same version is never reused.
            string userPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } np
                ? np : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            await File.WriteAllTextAsync(Path.Combine(app, "NuGet.Config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(root, "packages")}" /></config>
                  <packageSources>
                    <clear />
                    <add key="microagent-local" value="{feed}" />
                    <add key="user-packages" value="{userPackages}" />
                  </packageSources>
                </configuration>
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "app.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Microagent" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), Program);

            var build = await RunAsync("dotnet", ["build", "-c", "Release", "-nologo", "-v", "quiet"], app, TimeSpan.FromMinutes(8));
            Assert.True(build.Code == 0, $"dotnet build of the consumer failed:\n{build.Output}");
            string output = Path.Combine(app, "bin", "Release", "net10.0");
            Assert.True(File.Exists(Path.Combine(output, "runtimes", "linux-x64", "native", "microagent")), "the host binary is not in the build output");
            Assert.True(File.Exists(Path.Combine(output, "runtimes", "linux-x64", "native", "microagent-agent")), "the guest agent is not in the build output");

            var run = await RunAsync(Path.Combine(output, "app"), [], app, TimeSpan.FromMinutes(9), ("MICROAGENT_STATE_DIR", state));
            Assert.True(run.Code == 0, $"the consumer failed:\n{run.Output}");
            Assert.Contains("check qemu Ok", run.Output);
            Assert.Contains("created prepared", run.Output);
            Assert.Contains("started running", run.Output);
            Assert.Contains("pkg-ok 42 Linux\n", run.Output);
            Assert.Contains("exit 0", run.Output);
            Assert.Contains("deleted True", run.Output);
            Assert.False(Directory.Exists(Path.Combine(state, "workspaces", "pkg")));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>One package: the three assemblies with their docs, the readme, the native pieces; no package dependency on the inner assemblies.</summary>
    private static void AssertPackageLayout(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
        foreach (string expected in new[]
                 {
                     "lib/net10.0/Microagent.Core.dll", "lib/net10.0/Microagent.Core.xml", "lib/net10.0/Microagent.Interop.dll",
                     "lib/net10.0/Microagent.Protocol.dll", "README.md", "runtimes/linux-x64/native/microagent",
                     "runtimes/linux-x64/native/microagent-agent", "runtimes/linux-x64/native/microagent-images/default/oci-layout",
                 })
            Assert.Contains(expected, names);
        var nuspecEntry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using var reader = new StreamReader(nuspecEntry.Open());
        var nuspec = XDocument.Parse(reader.ReadToEnd());
        var ns = nuspec.Root!.Name.Namespace;
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.Equal("MIT", metadata.Element(ns + "license")?.Value);
        Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
        Assert.Equal("git", metadata.Element(ns + "repository")?.Attribute("type")?.Value);
        var dependencies = metadata.Descendants(ns + "dependency").Select(d => (string)d.Attribute("id")!).ToList();
        Assert.Contains("YamlDotNet", dependencies);
        Assert.DoesNotContain(dependencies, d => d.StartsWith("Microagent", StringComparison.Ordinal));
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args, string dir, TimeSpan timeout,
        params (string Name, string Value)[] env)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        // What a user's shell would not have: nothing points at this checkout's binaries.
        foreach (string v in new[] { "MICROAGENT_BIN", "MICROAGENT_AGENT", "MICROAGENT_DEFAULT_IMAGE", "MSBuildExtensionsPath", "MSBUILD_EXE_PATH", "MSBuildSDKsPath" })
            psi.Environment.Remove(v);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in env) psi.Environment[name] = value;
        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            return (-1, $"{file} timed out after {timeout}:\n{await stdout}\n{await stderr}");
        }
        output.Append(await stdout).Append(await stderr);
        return (p.ExitCode, output.ToString());
    }
}
