#!/usr/bin/env python3
"""llama.cpp's side of ops/vulkan_peer_bench.sh: prefill tokens/s of a GGUF
model on ticket texts through llama-cpp-python, on whichever backend that
llama-cpp-python was built with (Vulkan with --n-gpu-layers -1, the CPU with 0).

    ~/.cache/triage/llama-vk-venv/bin/python ops/vulkan_peer_bench.py \
        --model ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --data data/banking77/train.csv --n 32 --batch 1 --n-gpu-layers -1

What is timed (the way llama-bench times prompt processing): tickets are the
first --n non-empty rows of the CSV's `text` column, tokenized by llama.cpp as
`triage bench` tokenizes them (the classifier's default prompt template is
"{text}"; no BOS, as SmolLM2's add_bos_token is false; no special tokens).
--batch tickets go into one llama_decode (one sequence id each; 1 = one
ticket per decode, as llama-bench's pp test does with one prompt), with the
KV cache cleared before each decode, n_batch = n_ubatch = n_ctx large enough
for the whole batch (one micro-batch). The output is what `triage bench`
computes: the final-norm hidden state of each ticket's last token (embedding
mode, pooling LAST; no vocabulary-wide output layer), read back after each
decode, which also waits for the device. One full untimed pass over all
tickets comes first (pipelines, buffers, page-in), then --passes timed passes;
the figure is the best pass's total tokens / seconds.

Prints one JSON line: engine, device (from llama.cpp's log), layers offloaded,
graph splits, tickets, tokens, tokens/s, per-decode p50 ms, llama-cpp-python,
ggml version and commit. --log FILE writes llama.cpp's whole log there.
"""
import argparse
import csv
import ctypes
import json
import os
import re
import sys
import time

import llama_cpp
from llama_cpp import Llama

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compute", "tests", "golden"))
from bench_llama_cpp import prefill_runner  # noqa: E402

LOG = []


@llama_cpp.llama_log_callback
def _capture(level, text, user_data):  # keep llama.cpp's log for the summary
    LOG.append(text.decode("utf-8", "replace"))


def ggml_version():
    lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so")
    try:
        g = ctypes.CDLL(lib)
        g.ggml_version.restype = ctypes.c_char_p
        g.ggml_commit.restype = ctypes.c_char_p
        return g.ggml_version().decode(), g.ggml_commit().decode()
    except (OSError, AttributeError):
        return "unknown", "unknown"


def find(pattern, text, default=""):
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1).strip() if m else default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="CSV with a `text` column")
    ap.add_argument("--n", type=int, default=32, help="tickets")
    ap.add_argument("--batch", type=int, default=1, help="tickets per llama_decode")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n-gpu-layers", type=int, default=0, help="-1: all (Vulkan build)")
    ap.add_argument("--passes", type=int, default=1, help="timed passes; the best counts")
    ap.add_argument("--label", default="llama.cpp")
    ap.add_argument("--log", default=None, help="write llama.cpp's log to this file")
    args = ap.parse_args()

    llama_cpp.llama_log_set(_capture, None)
    texts = []
    with open(args.data, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if len(texts) >= args.n:
                break
            texts.append(row["text"])

    vocab = Llama(args.model, vocab_only=True, verbose=False)
    tokens = [vocab.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts]
    del vocab
    tokens = [t for t in tokens if t]
    batches = [tokens[i:i + args.batch] for i in range(0, len(tokens), args.batch)]
    longest = max(sum(len(t) for t in b) for b in batches)
    n_ctx = max(512, 1 << (longest - 1).bit_length())
    llm = Llama(args.model, n_gpu_layers=args.n_gpu_layers, n_threads=args.threads,
                n_threads_batch=args.threads, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST, verbose=False)
    run = prefill_runner(llm)  # the same decode as `triage bench`'s llama.cpp rows

    for b in batches:  # warm-up pass, untimed
        run(b)
    best, lat = None, []
    for _ in range(max(1, args.passes)):
        pass_lat = []
        t0 = time.perf_counter()
        for b in batches:
            t1 = time.perf_counter()
            run(b)
            pass_lat.append((time.perf_counter() - t1) * 1000.0)
        s = time.perf_counter() - t0
        if best is None or s < best:
            best, lat = s, pass_lat
    n_tokens = sum(len(t) for t in tokens)
    log = "".join(LOG)
    if args.log:
        with open(args.log, "w", encoding="utf-8") as f:
            f.write(log)
    device = find(r"^ggml_vulkan: 0 = (.*?)(?: \| |$)", log)
    if not device:
        device = "CPU" if args.n_gpu_layers == 0 else find(r"using device (\S+.*)$", log, "?")
    version, commit = ggml_version()
    lat.sort()
    print(json.dumps({
        "engine": args.label,
        "device": device,
        "offloaded": find(r"offloaded (\d+/\d+) layers", log, "?"),
        "graph_splits": find(r"graph splits = (\d+)", log, "?"),
        "batch": args.batch,
        "threads": args.threads,
        "tickets": len(tokens),
        "tokens": n_tokens,
        "seconds": round(best, 4),
        "tokens_per_s": round(n_tokens / best, 1),
        "p50_ms": round(lat[len(lat) // 2], 3),
        "llama_cpp_python": llama_cpp.__version__,
        "ggml": version,
        "ggml_commit": commit,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
    }))


if __name__ == "__main__":
    sys.exit(main())
