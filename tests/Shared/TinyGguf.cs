using System.Text;

namespace Microagent.TestSupport;

/// <summary>
/// Writes a tiny random-weight llama model as GGUF v3 (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): llama
/// metadata (1 block, 32-wide embeddings, 2 heads), an SPM vocabulary of &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, all 256 byte tokens
/// (&lt;0x00&gt;..&lt;0xFF&gt;, type BYTE) and a few words, a ChatML chat template, and F32 tensors. About 90 KB; it answers
/// gibberish (printable: the output head never favours a byte token that is not printable ASCII), which is all the runner tests need: llama.cpp loads it and generates tokens.
/// </summary>
public static class TinyGguf
{
    private const uint TypeUInt32 = 4, TypeInt32 = 5, TypeFloat32 = 6, TypeString = 8, TypeArray = 9;
    private const int Alignment = 32;
    private const int Embd = 32, Heads = 2, Ff = 64, Layers = 1, Context = 512;

    /// <summary>Writes the model to <paramref name="path"/> (deterministic for a <paramref name="seed"/>).</summary>
    public static void Write(string path, int seed = 1)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { 2, 3, 3 }; // UNKNOWN, CONTROL, CONTROL
        for (int b = 0; b < 256; b++) { tokens.Add($"<0x{b:X2}>"); types.Add(6); } // BYTE
        foreach (string word in new[] { "\u2581", "\u2581hello", "\u2581the", "\u2581a", "e", "t", "o" }) { tokens.Add(word); types.Add(1); } // NORMAL
        int vocab = tokens.Count;
        var scores = Enumerable.Range(0, vocab).Select(i => types[i] == 1 ? -1f * i / vocab : 0f).ToList();

        var tensors = new List<(string Name, long[] Dims)>
        {
            ("token_embd.weight", [Embd, vocab]),
            ("output_norm.weight", [Embd]),
            ("output.weight", [Embd, vocab]),
        };
        for (int l = 0; l < Layers; l++)
        {
            tensors.Add(($"blk.{l}.attn_norm.weight", [Embd]));
            tensors.Add(($"blk.{l}.attn_q.weight", [Embd, Embd]));
            tensors.Add(($"blk.{l}.attn_k.weight", [Embd, Embd]));
            tensors.Add(($"blk.{l}.attn_v.weight", [Embd, Embd]));
            tensors.Add(($"blk.{l}.attn_output.weight", [Embd, Embd]));
            tensors.Add(($"blk.{l}.ffn_norm.weight", [Embd]));
            tensors.Add(($"blk.{l}.ffn_gate.weight", [Embd, Ff]));
            tensors.Add(($"blk.{l}.ffn_down.weight", [Ff, Embd]));
            tensors.Add(($"blk.{l}.ffn_up.weight", [Embd, Ff]));
        }

        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new BinaryWriter(fs, Encoding.UTF8);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        var kv = new List<Action>
        {
            () => Str(w, "general.architecture", "llama"),
            () => Str(w, "general.name", "microagent-tiny-test"),
            () => U32(w, "general.alignment", Alignment),
            () => U32(w, "llama.context_length", Context),
            () => U32(w, "llama.embedding_length", Embd),
            () => U32(w, "llama.block_count", Layers),
            () => U32(w, "llama.feed_forward_length", Ff),
            () => U32(w, "llama.rope.dimension_count", Embd / Heads),
            () => U32(w, "llama.attention.head_count", Heads),
            () => U32(w, "llama.attention.head_count_kv", Heads),
            () => F32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f),
            () => U32(w, "llama.vocab_size", (uint)vocab),
            () => Str(w, "tokenizer.ggml.model", "llama"),
            () => { Key(w, "tokenizer.ggml.tokens"); w.Write(TypeArray); w.Write(TypeString); w.Write((ulong)vocab); foreach (string t in tokens) GgufString(w, t); },
            () => { Key(w, "tokenizer.ggml.scores"); w.Write(TypeArray); w.Write(TypeFloat32); w.Write((ulong)vocab); foreach (float s in scores) w.Write(s); },
            () => { Key(w, "tokenizer.ggml.token_type"); w.Write(TypeArray); w.Write(TypeInt32); w.Write((ulong)vocab); foreach (int t in types) w.Write(t); },
            () => U32(w, "tokenizer.ggml.unknown_token_id", 0),
            () => U32(w, "tokenizer.ggml.bos_token_id", 1),
            () => U32(w, "tokenizer.ggml.eos_token_id", 2),
            () => Str(w, "tokenizer.chat_template",
                "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"),
        };
        w.Write((ulong)kv.Count);
        foreach (var write in kv) write();

        long offset = 0;
        foreach (var (name, dims) in tensors)
        {
            GgufString(w, name);
            w.Write((uint)dims.Length);
            foreach (long d in dims) w.Write((ulong)d);
            w.Write(0u); // GGML_TYPE_F32
            w.Write((ulong)offset);
            offset += Align(dims.Aggregate(1L, (a, b) => a * b) * 4);
        }
        Pad(w);
        var rng = new Random(seed);
        foreach (var (name, dims) in tensors)
        {
            long n = dims.Aggregate(1L, (a, b) => a * b);
            bool norm = name.EndsWith("norm.weight", StringComparison.Ordinal);
            bool head = name == "output.weight";
            for (long i = 0; i < n; i++)
            {
                float r = (float)(rng.NextDouble() * 0.2 - 0.1);
                // The output head: rows (Embd floats per token) of tokens that would decode to invalid UTF-8 or a control byte are
                // zero and the others large, so sampling never picks them (llama-server rejects output that is not valid UTF-8).
                w.Write(norm ? 1f : head ? (Printable(tokens[(int)(i / Embd)]) ? r * 50 : 0f) : r);
            }
            Pad(w);
        }
    }

    /// <summary>A token whose text is printable ASCII or a word (not &lt;unk&gt;, &lt;s&gt;, a control byte or a byte of a multi-byte sequence).</summary>
    private static bool Printable(string token) =>
        token == "</s>" || (token.StartsWith("<0x", StringComparison.Ordinal) && token.Length == 6
            ? Convert.ToInt32(token[3..5], 16) is >= 0x20 and < 0x7F
            : token is not ("<unk>" or "<s>"));

    private static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        w.Flush();
        long pos = w.BaseStream.Position;
        for (long i = pos; i < Align(pos); i++) w.Write((byte)0);
    }

    private static void GgufString(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void Key(BinaryWriter w, string key) => GgufString(w, key);
    private static void Str(BinaryWriter w, string key, string value) { Key(w, key); w.Write(TypeString); GgufString(w, value); }
    private static void U32(BinaryWriter w, string key, uint value) { Key(w, key); w.Write(TypeUInt32); w.Write(value); }
    private static void F32(BinaryWriter w, string key, float value) { Key(w, key); w.Write(TypeFloat32); w.Write(value); }
}
