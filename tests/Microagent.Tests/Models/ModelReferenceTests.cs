using Microagent.Errors;
using Microagent.Models;

namespace Microagent.Tests.Models;

public sealed class ModelReferenceTests
{
    [Theory]
    [InlineData("hf.co/ggml-org/models@v1/tiny/stories.gguf", "ggml-org", "models", "v1", "tiny/stories.gguf")]
    [InlineData("hf.co/ggml-org/models/stories.gguf", "ggml-org", "models", "main", "stories.gguf")]
    [InlineData("TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_K_M.gguf", "TheBloke", "Llama-2-7B-GGUF", "main", "llama-2-7b.Q4_K_M.gguf")]
    [InlineData("org/repo@0123abcd/m.gguf", "org", "repo", "0123abcd", "m.gguf")]
    public void Hugging_face_references_parse_to_their_parts(string text, string org, string repo, string rev, string file)
    {
        var r = ModelReference.Parse(text);
        Assert.False(r.IsLocal);
        Assert.Equal($"{org}|{repo}|{rev}|{file}", $"{r.Org}|{r.Repo}|{r.Revision}|{r.File}");
        Assert.Equal($"hf.co/{org}/{repo}@{rev}/{file}", r.Canonical);
        Assert.Equal(r, ModelReference.Parse(r.Canonical));
    }

    [Fact]
    public void The_resolve_url_follows_the_hub_layout_on_the_given_endpoint()
    {
        var r = ModelReference.Parse("hf.co/org/repo@dev/sub dir/m.gguf".Replace(" ", "_", StringComparison.Ordinal));
        Assert.Equal("https://huggingface.co/org/repo/resolve/dev/sub_dir/m.gguf", r.ResolveUrl().ToString());
        Assert.Equal("http://127.0.0.1:9/org/repo/resolve/dev/sub_dir/m.gguf", r.ResolveUrl("http://127.0.0.1:9/").ToString());
    }

    [Fact]
    public void A_path_is_local_and_absolute()
    {
        var r = ModelReference.Parse("./models/tiny.gguf");
        Assert.True(r.IsLocal);
        Assert.Equal(Path.GetFullPath("models/tiny.gguf"), r.Canonical);
        Assert.True(ModelReference.Parse("/abs/m.GGUF").IsLocal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("org/repo")]
    [InlineData("org/repo/model.bin")]
    [InlineData("./model.bin")]
    [InlineData("org/repo/../../etc/passwd.gguf")]
    [InlineData("org/repo/a//b.gguf")]
    [InlineData("hf.co/-org/repo/m.gguf")]
    public void Malformed_references_are_invalid(string text)
    {
        var e = Assert.Throws<MicroagentException>(() => ModelReference.Parse(text));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("model", e.Field);
    }
}
