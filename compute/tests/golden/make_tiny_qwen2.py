#!/usr/bin/env python3
"""Golden logits of llama.cpp for a tiny qwen2 model (compute/tests/model_qwen2_test.cc).

The model is not committed: its weights come from a counter-based hash that
the C++ test reproduces bit for bit (tiny_qwen2_value() there, value() here),
so the test writes the same file with the project's own GGUF writer. This
script writes it with gguf-py, runs it in llama.cpp (llama-cpp-python 0.3.36,
the venv that `ops/setup.sh --with-llama-cpp` builds, plus `pip install gguf`)
and saves every token's logits of a few sequences, and a greedy
continuation, to tiny_qwen2.json next to this script:

    ~/.cache/triage/llama-venv/bin/python compute/tests/golden/make_tiny_qwen2.py

What qwen2 adds to llama, and what the goldens therefore pin down: biases on
the Q, K and V projections, and NeoX-style RoPE (rotating the two halves of
each head rather than adjacent pairs), here with a freq base of 1e6 as
Qwen2.5 uses.
"""
import json
import os
import tempfile

import numpy as np
import gguf
from llama_cpp import Llama
import llama_cpp

DIM, N_HEADS, N_KV_HEADS, FFN, LAYERS, CTX = 64, 4, 2, 128, 2, 256
HEAD_DIM = DIM // N_HEADS
ROPE_BASE, RMS_EPS = 1000000.0, 1e-6
MASK64 = (1 << 64) - 1

# 256 byte tokens in GPT-2's byte-to-unicode spelling, one merge, specials.
def byte_tokens():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]

TOKENS = byte_tokens() + ["\u0120\u0120", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = len(TOKENS)  # 260
EOS = TOKENS.index("<|endoftext|>")


def value(tensor: int, count: int) -> np.ndarray:
    """Uniform in [-0.5, 0.5): the low 24 bits of a splitmix64-style hash of
    (tensor, element), as float32 without rounding."""
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = (i + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(
            (tensor * 0xBF58476D1CE4E5B9) & MASK64)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(29)
    low = (h & np.uint64(0xFFFFFF)).astype(np.float32)
    return low * np.float32(1.0 / 16777216.0) - np.float32(0.5)


def tensors():
    """(name, array (rows, cols) or (n,)) in the order the C++ test numbers them."""
    out = []

    def mat(name, rows, cols, gain):
        scale = np.float32(gain) / np.sqrt(np.float32(cols)) * np.float32(2.0)
        out.append((name, (value(len(out), rows * cols) * scale).reshape(rows, cols)))

    def norm(name, n):
        out.append((name, np.float32(1.0) + value(len(out), n) * np.float32(0.2)))

    def bias(name, n):
        out.append((name, value(len(out), n) * np.float32(0.5)))

    mat("token_embd.weight", VOCAB, DIM, 16.0)
    norm("output_norm.weight", DIM)
    mat("output.weight", VOCAB, DIM, 4.0)  # untied: tied logits mostly echo the input
    for l in range(LAYERS):
        p = f"blk.{l}."
        norm(p + "attn_norm.weight", DIM)
        mat(p + "attn_q.weight", N_HEADS * HEAD_DIM, DIM, 2.0)
        bias(p + "attn_q.bias", N_HEADS * HEAD_DIM)
        mat(p + "attn_k.weight", N_KV_HEADS * HEAD_DIM, DIM, 2.0)
        bias(p + "attn_k.bias", N_KV_HEADS * HEAD_DIM)
        mat(p + "attn_v.weight", N_KV_HEADS * HEAD_DIM, DIM, 1.0)
        bias(p + "attn_v.bias", N_KV_HEADS * HEAD_DIM)
        mat(p + "attn_output.weight", DIM, N_HEADS * HEAD_DIM, 0.5)
        norm(p + "ffn_norm.weight", DIM)
        mat(p + "ffn_gate.weight", FFN, DIM, 1.0)
        mat(p + "ffn_up.weight", FFN, DIM, 1.0)
        mat(p + "ffn_down.weight", DIM, FFN, 0.5)
    return out


SEQUENCES = [
    [5, 17, 42, 7, 99, 250, 3],
    [1],
    [200, 0, 12, 12, 12, 8, 64, 128, 255, 150, 11, 2, 9, 33, 34, 35, 36, 37, 100],
]
GREEDY_PROMPT = [72, 101, 108, 108, 111]
GREEDY_TOKENS = 24


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny_qwen2.gguf")
        w = gguf.GGUFWriter(path, "qwen2")
        w.add_block_count(LAYERS)
        w.add_context_length(CTX)
        w.add_embedding_length(DIM)
        w.add_feed_forward_length(FFN)
        w.add_head_count(N_HEADS)
        w.add_head_count_kv(N_KV_HEADS)
        w.add_rope_freq_base(ROPE_BASE)
        w.add_layer_norm_rms_eps(RMS_EPS)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(TOKENS)
        w.add_token_types([1] * 257 + [3] * 3)
        w.add_token_merges(["\u0120 \u0120"])
        w.add_eos_token_id(EOS)
        for name, arr in tensors():
            w.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

        llm = Llama(model_path=path, n_ctx=CTX, n_threads=2, logits_all=True, verbose=False)
        seqs = []
        for ids in SEQUENCES:
            llm.reset()
            llm.eval(ids)
            logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
            seqs.append({"ids": ids, "logits": [[float(x) for x in row] for row in logits]})
        llm.reset()
        ctx = list(GREEDY_PROMPT)
        greedy = []
        llm.eval(ctx)
        for _ in range(GREEDY_TOKENS):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            greedy.append(nxt)
            llm.eval([nxt])

    golden = {
        "generator": f"make_tiny_qwen2.py, llama-cpp-python {llama_cpp.__version__}, gguf-py",
        "hparams": {"dim": DIM, "n_heads": N_HEADS, "n_kv_heads": N_KV_HEADS, "ffn": FFN,
                    "layers": LAYERS, "vocab": VOCAB, "context": CTX, "rope_freq_base": ROPE_BASE,
                    "rms_eps": RMS_EPS},
        "sequences": seqs,
        "greedy": {"prompt": GREEDY_PROMPT, "tokens": greedy},
    }
    with open(os.path.join(here, "tiny_qwen2.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print("tiny_qwen2.json:", [len(s["ids"]) for s in seqs], "greedy", greedy)


if __name__ == "__main__":
    main()
