using Microagent.Errors;
using Microagent.Models;

namespace Microagent.Tests.Models;

public sealed class RunnerArgvTests
{
    private static string? Found(string name) => "/opt/bin/" + Path.GetFileName(name);

    [Fact]
    public void Llamacpp_serves_the_file_on_loopback_and_gpu_off_adds_the_cpu_flags()
    {
        var argv = RunnerArgv.Build(new ModelRunnerSpec { Gpu = ModelGpu.Off, Command = "llama-server" }, "/m/a b.gguf", "127.0.0.1", 4242, Found);
        Assert.Equal(["/opt/bin/llama-server", "--model", "/m/a b.gguf", "--host", "127.0.0.1", "--port", "4242", "--device", "none", "--gpu-layers", "0"], argv);
        var auto = RunnerArgv.Build(new ModelRunnerSpec { Command = "llama-server", ServedModel = "tiny" }, "/m.gguf", "127.0.0.1", 1, Found);
        Assert.DoesNotContain("--device", auto);
        Assert.Equal(["--alias", "tiny"], auto[7..9]);
    }

    [Theory]
    [InlineData("-ngl", "99")]
    [InlineData("--gpu-layers", "5")]
    [InlineData("--n-gpu-layers=5", null)]
    [InlineData("--device", "CUDA0")]
    public void Gpu_off_adds_nothing_when_the_extra_arguments_set_a_gpu_flag(string flag, string? value)
    {
        string[] extra = value is null ? [flag] : [flag, value];
        var argv = RunnerArgv.Build(new ModelRunnerSpec { Gpu = ModelGpu.Off, Command = "llama-server", Args = extra }, "/m.gguf", "127.0.0.1", 1, Found);
        Assert.Equal(extra, argv[7..]);
        Assert.True(RunnerArgv.SetsGpuFlag(extra));
        Assert.False(RunnerArgv.SetsGpuFlag(["--threads", "2", "--devices-x"]));
    }

    [Fact]
    public void Vllm_gets_the_openai_server_module_and_refuses_gpu_off()
    {
        var argv = RunnerArgv.Build(new ModelRunnerSpec { Backend = ModelRunnerBackend.Vllm, Model = "org/model", ServedModel = "m" }, "/x.gguf", "127.0.0.1", 8000, Found);
        Assert.Equal(["/opt/bin/python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "org/model", "--served-model-name", "m", "--host", "127.0.0.1", "--port", "8000"], argv);
        var spec = new ModelRunnerSpec { Backend = ModelRunnerBackend.Vllm, Gpu = ModelGpu.Off };
        Assert.Equal(ErrorKind.Invalid, Assert.Throws<MicroagentException>(spec.Validate).Kind);
    }

    [Fact]
    public void Custom_substitutes_placeholders_inside_single_arguments_and_never_splits_them()
    {
        var spec = new ModelRunnerSpec { Backend = ModelRunnerBackend.Custom, Command = "/srv/run", Args = ["--model={model}", "{host}", "{port}", "--listen", "{addr}", "$(rm -rf /); {port}"] };
        var argv = RunnerArgv.Build(spec, "/m/x y.gguf", "127.0.0.1", 9, Found);
        Assert.Equal(["/opt/bin/run", "--model=/m/x y.gguf", "127.0.0.1", "9", "--listen", "127.0.0.1:9", "$(rm -rf /); 9"], argv);
        Assert.Throws<MicroagentException>(new ModelRunnerSpec { Backend = ModelRunnerBackend.Custom }.Validate);
    }

    [Fact]
    public void A_missing_program_is_not_found_with_a_remedy()
    {
        var e = Assert.Throws<MicroagentException>(() => RunnerArgv.Build(new ModelRunnerSpec { Command = "nope" }, "/m.gguf", "127.0.0.1", 1, _ => null));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.NotNull(e.Remediation);
    }

    [Fact]
    public void The_digest_ignores_environment_values_and_storage_keeps_only_keys()
    {
        var a = new ModelRunnerSpec { Env = ["TOKEN=one"] };
        var b = new ModelRunnerSpec { Env = ["TOKEN=two"] };
        Assert.Equal(a.Digest, b.Digest);
        Assert.NotEqual(a.Digest, new ModelRunnerSpec { Args = ["--threads", "2"] }.Digest);
        Assert.Equal(["TOKEN"], a.ForStorage().Env);
    }

    [Fact]
    public void A_model_spec_overrides_the_stored_pairing_field_by_field()
    {
        var stored = new ModelSpec { Ref = "org/repo/m.gguf", Runner = "llamacpp", Gpu = "off", Args = ["--threads", "2"], Env = ["K=V"] }.Resolve(null)!;
        Assert.Equal(ModelGpu.Off, stored.Runner.Gpu);
        var boot = new ModelSpec { Mediation = "local-allow" }.Resolve(stored with { Runner = stored.Runner.ForStorage() })!;
        Assert.Equal("hf.co/org/repo@main/m.gguf", boot.Ref);
        Assert.Equal(ModelMediationMode.LocalAllow, boot.Mediation.Mode);
        Assert.Equal(["--threads", "2"], boot.Runner.Args);
        Assert.Empty(boot.Runner.Env);
        Assert.Null(new ModelSpec().Resolve(null));
        Assert.Throws<MicroagentException>(() => new ModelSpec { Runner = "vllm" }.Resolve(null));
        Assert.Throws<MicroagentException>(() => new ModelSpec { Ref = "o/r/m.gguf", Mediation = "policy" }.Resolve(null));
    }
}
