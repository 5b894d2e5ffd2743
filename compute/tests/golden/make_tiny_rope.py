#!/usr/bin/env python3
"""Golden logits of llama.cpp for RoPE scaling on a tiny llama model
(compute/tests/model_rope_scaling_test.cc).

Same approach as make_tiny_qwen2.py, whose weight generator (value()) and
byte vocabulary this script imports: the model is not committed, the C++
test writes the bit-identical file with the project's GGUF writer. This
script writes three variants of one tiny llama model with gguf-py, runs each
in llama.cpp (llama-cpp-python 0.3.36 from ~/.cache/triage/llama-venv, plus
`pip install gguf`) and saves sampled rows of logits of two long prompts to
tiny_rope.json next to this script:

    ~/.cache/triage/llama-venv/bin/python compute/tests/golden/make_tiny_rope.py

Variants (the weights are the same in all three):
  none    no scaling: the control
  linear  llama.rope.scaling.type = linear, llama.rope.scaling.factor = 4
  freqs   a rope_freqs.weight tensor of n_rot / 2 per-pair divisors, as
          Llama 3.1's (1 for the fast pairs, up to 8 for the slow ones)

The prompts are 150 and 110 tokens long so that positions up to 149 are
rotated; rows of logits are kept every 32nd position and at the last one.
"""
import json
import os
import sys
import tempfile

import numpy as np
import gguf
from llama_cpp import Llama
import llama_cpp

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_qwen2 import TOKENS, VOCAB, EOS, value  # noqa: E402

DIM, N_HEADS, N_KV_HEADS, FFN, LAYERS, CTX = 64, 4, 2, 128, 3, 256
HEAD_DIM = DIM // N_HEADS
ROPE_BASE, RMS_EPS = 10000.0, 1e-5
LINEAR_FACTOR = 4.0
FREQ_FACTORS = [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 8.0]  # HEAD_DIM / 2 of them
assert len(FREQ_FACTORS) == HEAD_DIM // 2

# Weights are numbered from this offset so they differ from the qwen2 model's.
TENSOR_BASE = 1000


def tensors():
    """(name, array (rows, cols) or (n,)) in the order the C++ test numbers them."""
    out = []

    def mat(name, rows, cols, gain):
        scale = np.float32(gain) / np.sqrt(np.float32(cols)) * np.float32(2.0)
        out.append((name, (value(TENSOR_BASE + len(out), rows * cols) * scale).reshape(rows, cols)))

    def norm(name, n):
        out.append((name, np.float32(1.0) + value(TENSOR_BASE + len(out), n) * np.float32(0.2)))

    mat("token_embd.weight", VOCAB, DIM, 16.0)
    norm("output_norm.weight", DIM)
    mat("output.weight", VOCAB, DIM, 4.0)
    for l in range(LAYERS):
        p = f"blk.{l}."
        norm(p + "attn_norm.weight", DIM)
        mat(p + "attn_q.weight", N_HEADS * HEAD_DIM, DIM, 2.0)
        mat(p + "attn_k.weight", N_KV_HEADS * HEAD_DIM, DIM, 2.0)
        mat(p + "attn_v.weight", N_KV_HEADS * HEAD_DIM, DIM, 1.0)
        mat(p + "attn_output.weight", DIM, N_HEADS * HEAD_DIM, 0.5)
        norm(p + "ffn_norm.weight", DIM)
        mat(p + "ffn_gate.weight", FFN, DIM, 1.0)
        mat(p + "ffn_up.weight", FFN, DIM, 1.0)
        mat(p + "ffn_down.weight", DIM, FFN, 0.5)
    return out


def prompt(tensor, n):
    """n byte tokens from the hash (the C++ test derives the same ids)."""
    return [int(x) for x in ((value(tensor, n) + np.float32(0.5)) * np.float32(256.0)).astype(np.int64)]


SEQUENCES = [prompt(900, 150), prompt(901, 110)]


def rows_of(n):
    return sorted(set(list(range(0, n, 32)) + [n - 1]))


def write_model(path, variant):
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(LAYERS)
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEADS)
    w.add_head_count_kv(N_KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(RMS_EPS)
    if variant == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(LINEAR_FACTOR)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(TOKENS)
    w.add_token_types([1] * 257 + [3] * 3)
    w.add_token_merges(["\u0120 \u0120"])
    w.add_eos_token_id(EOS)
    for name, arr in tensors():
        w.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))
    if variant == "freqs":
        w.add_tensor("rope_freqs.weight", np.array(FREQ_FACTORS, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run(path):
    llm = Llama(model_path=path, n_ctx=CTX, n_threads=2, logits_all=True, verbose=False)
    seqs = []
    for ids in SEQUENCES:
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
        rows = rows_of(len(ids))
        # The shortest decimal that reads back as the same float32.
        seqs.append({"rows": rows, "logits": [[float(str(x)) for x in logits[r]] for r in rows]})
    del llm
    return seqs


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("none", "linear", "freqs"):
            path = os.path.join(tmp, f"tiny_rope_{variant}.gguf")
            write_model(path, variant)
            variants[variant] = run(path)
    golden = {
        "generator": f"make_tiny_rope.py, llama-cpp-python {llama_cpp.__version__}, gguf-py",
        "hparams": {"dim": DIM, "n_heads": N_HEADS, "n_kv_heads": N_KV_HEADS, "ffn": FFN,
                    "layers": LAYERS, "vocab": VOCAB, "context": CTX, "rope_freq_base": ROPE_BASE,
                    "rms_eps": RMS_EPS, "linear_factor": LINEAR_FACTOR, "freq_factors": FREQ_FACTORS,
                    "tensor_base": TENSOR_BASE},
        "sequences": [{"ids": ids} for ids in SEQUENCES],
        "variants": variants,
    }
    with open(os.path.join(here, "tiny_rope.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    a, b = np.array(variants["none"][0]["logits"]), np.array(variants["linear"][0]["logits"])
    c = np.array(variants["freqs"][0]["logits"])
    print("tiny_rope.json: rows", [v["rows"] for v in variants["none"]],
          "max |none - linear|", float(np.abs(a - b).max()), "max |none - freqs|", float(np.abs(a - c).max()))


if __name__ == "__main__":
    main()
