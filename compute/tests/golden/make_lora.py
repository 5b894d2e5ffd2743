#!/usr/bin/env python3
"""Golden logits of llama.cpp with a LoRA adapter on SmolLM2-135M (compute/tests/model_lora_test.cc).

The adapter is not committed: its values come from a counter-based hash
(value() here, lora_value() in the C++ test, the same arithmetic as
make_tiny_qwen2.py), so the test writes the same file bit for bit with the
project's own GGUF writer. This script writes it with gguf-py in the layout
llama.cpp's convert_lora_to_gguf.py produces, loads it into llama.cpp
(llama-cpp-python 0.3.36, Llama(lora_path=..., lora_scale=...)) on the Q4_1
base model and saves the logits of every token of a few prompts:

    ~/.cache/triage/llama-venv/bin/python compute/tests/golden/make_lora.py \
        [--model ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf]

The adapter: general.type "adapter", adapter.type "lora", adapter.lora.alpha
16, rank 8, targets attn_q, attn_v and ffn_down of every layer, F32. For a
target W of ggml shape (ne0 = n_in, ne1 = n_out), "<W>.lora_a" has ggml shape
(n_in, rank) (numpy (rank, n_in)) and "<W>.lora_b" (rank, n_out) (numpy
(n_out, rank)); llama.cpp adds scale * alpha / rank * B (A x) to W x.

Files written next to this script (about 100 KB in all, so the vocabulary is
sampled):

  lora_logits.json     the adapter's parameters, the sampled vocabulary ids
                       (every SAMPLE_STRIDE-th id), and per run (prompt, lora
                       scale): the token ids, the top TOP_K (id, logit) of
                       every token, and where its sampled rows start in
  lora_logits_f16.bin  the logits of every token at the sampled ids, float16,
                       rows of len(sample_ids) one run after another.

Also printed: how far the adapter moves llama.cpp's own logits (cosine of
with vs without adapter), the figure the test's "visibly changes" bound
comes from.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp
from llama_cpp import Llama

RANK = 8
ALPHA = 16.0
TARGETS = ["attn_q", "attn_v", "ffn_down"]
# Gains of A and B: powers of two, so value() * gain is exact in float32 and
# the C++ test's products are the same numbers.
GAIN_A = 0.25
GAIN_B = 0.125
N_THREADS = 2
N_CTX = 512
TOP_K = 16
SAMPLE_STRIDE = 64
MASK64 = (1 << 64) - 1

PROMPTS = [
    ("capital", "The capital of France is"),
    ("ticket", "My card payment was declined twice, can you refund it?"),
    ("chatml",
     "<|im_start|>system\nClassify the ticket.<|im_end|>\n"
     "<|im_start|>user\nI lost my card, please block it.<|im_end|>\n<|im_start|>assistant\n"),
]
# (prompt, lora scale) runs; scale 0.5 checks that the scale multiplies alpha / rank.
RUNS = [("capital", 1.0), ("ticket", 1.0), ("chatml", 1.0), ("capital", 0.5)]


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


def base_shapes(model_path):
    """name -> (n_out, n_in) of every 2-D tensor of the base model."""
    r = gguf.GGUFReader(model_path)
    out = {}
    for t in r.tensors:
        if len(t.shape) == 2:
            out[t.name] = (int(t.shape[1]), int(t.shape[0]))  # ggml ne0 first
    n_layers = int(r.fields["llama.block_count"].parts[-1][0])
    return out, n_layers


def adapter_tensors(shapes, n_layers):
    """(name, numpy array) in the order the C++ test numbers them."""
    out = []
    for l in range(n_layers):
        for t in TARGETS:
            name = f"blk.{l}.{t}.weight"
            n_out, n_in = shapes[name]
            a = (value(len(out), RANK * n_in) * np.float32(GAIN_A)).reshape(RANK, n_in)
            out.append((name + ".lora_a", a))
            b = (value(len(out), n_out * RANK) * np.float32(GAIN_B)).reshape(n_out, RANK)
            out.append((name + ".lora_b", b))
    return out


def write_adapter(path, tensors):
    w = gguf.GGUFWriter(path, "llama")
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", ALPHA)
    for name, arr in tensors:
        w.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def all_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def cosine(a, b):
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=here)
    args = ap.parse_args()

    shapes, n_layers = base_shapes(args.model)
    kw = dict(n_threads=N_THREADS, n_threads_batch=N_THREADS, n_ctx=N_CTX, n_batch=N_CTX,
              logits_all=True, verbose=False)
    base = Llama(args.model, **kw)
    n_vocab = base.n_vocab()
    sample = np.arange(0, n_vocab, SAMPLE_STRIDE)
    tokens = {name: [int(t) for t in base.tokenize(text.encode(), add_bos=False, special=True)]
              for name, text in PROMPTS}
    base_logits = {name: all_logits(base, tokens[name]) for name, _ in PROMPTS}
    del base

    runs, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lora.gguf")
        write_adapter(path, adapter_tensors(shapes, n_layers))
        by_scale = {}
        for name, scale in RUNS:
            if scale not in by_scale:
                by_scale[scale] = Llama(args.model, lora_path=path, lora_scale=scale, **kw)
            logits = all_logits(by_scale[scale], tokens[name])
            top = []
            for row in logits:
                ids = np.argsort(-row, kind="stable")[:TOP_K]
                top.append({"ids": [int(i) for i in ids], "logits": [float(row[i]) for i in ids]})
            cos = [cosine(x, y) for x, y in zip(logits, base_logits[name])]
            print(f"{name} scale {scale}: {len(tokens[name])} tokens, cosine(with, without "
                  f"adapter) min {min(cos):.4f} mean {np.mean(cos):.4f}, max|diff| "
                  f"{np.abs(logits - base_logits[name]).max():.3f}", file=sys.stderr)
            runs.append({"prompt": name, "lora_scale": scale, "tokens": tokens[name],
                         "row": sum(len(r) for r in rows), "top": top})
            rows.append(logits[:, sample])

    meta = {
        "generator": "compute/tests/golden/make_lora.py",
        "llama_cpp_python": llama_cpp.__version__,
        "gguf_py": getattr(gguf, "__version__", "0.19"),
        "model": os.path.basename(args.model),
        "model_bytes": os.path.getsize(args.model),
        "n_vocab": n_vocab,
        "lora": {"rank": RANK, "alpha": ALPHA, "targets": TARGETS, "gain_a": GAIN_A,
                 "gain_b": GAIN_B, "type": "F32"},
        "sample_stride": SAMPLE_STRIDE,
        "n_sample": int(len(sample)),
        "logits_f16": "lora_logits_f16.bin",
        "runs": runs,
    }
    with open(os.path.join(args.out, "lora_logits.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, separators=(",", ":"))
        f.write("\n")
    np.concatenate(rows).astype("<f2").tofile(os.path.join(args.out, "lora_logits_f16.bin"))


if __name__ == "__main__":
    main()
