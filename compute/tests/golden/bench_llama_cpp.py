#!/usr/bin/env python3
"""llama.cpp's side of `triage bench`: prefill throughput of the same model on
the same tickets with the same thread count, through llama-cpp-python.

    /root/.cache/triage/llama-venv/bin/python compute/tests/golden/bench_llama_cpp.py \
        --model ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --data /work/shared/data/banking77/train.csv --n 256 --batch 8 --threads 2

The task is what classification does: each ticket is one sequence, a batch of
tickets is decoded in one llama_decode call (one sequence id per ticket, as
Llama.embed() does), and the output is the final-norm hidden state of each
ticket's last token (pooling LAST), so no vocabulary-wide output layer is
computed. Tickets are the first --n rows of the CSV's `text` column, tokenized
by llama.cpp (no BOS: SmolLM2's add_bos_token is false; no special tokens).

Prints one JSON line: tickets/s, tokens/s, p50/p99 batch latency (ms), peak
RSS of this process (MB), the llama-cpp-python version. --dump-tokens FILE
writes the token ids, one ticket per line (space-separated), for engines run
without their own tokenizer.
"""
import argparse
import csv
import json
import os
import resource
import sys
import time

import llama_cpp
from llama_cpp import Llama


@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):  # keep llama.cpp's log off the table
    pass


def prefill_runner(llm):
    """run(batch): one llama_decode of the batch's token lists, one sequence
    each, with the KV cache cleared first; each sequence's pooled state is read
    back, as a classifier would. Shared with ops/vulkan_peer_bench.py."""
    n_embd = llm.n_embd()

    def run(batch):
        llm._ctx.kv_cache_clear()
        llm._batch.reset()
        for seq_id, t in enumerate(batch):
            llm._batch.add_sequence(t, seq_id, False)
        llm._ctx.decode(llm._batch)
        for seq_id in range(len(batch)):
            ptr = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, seq_id)
            _ = ptr[n_embd - 1]

    return run


def percentile(values, q):
    s = sorted(values)
    if not s:
        return 0.0
    i = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="CSV with a `text` column")
    ap.add_argument("--n", type=int, default=256, help="tickets")
    ap.add_argument("--batch", type=int, default=8, help="tickets per llama_decode")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dump-tokens", default=None)
    args = ap.parse_args()

    with open(args.data, newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)][: args.n]

    llama_cpp.llama_log_set(_quiet, None)
    vocab = Llama(args.model, vocab_only=True, verbose=False)
    tokens = [vocab.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts]
    del vocab
    # One batch must fit a micro-batch (n_ubatch) and the KV cache (n_ctx).
    longest = max(sum(sorted((len(t) for t in tokens[i:i + args.batch]), reverse=True))
                  for i in range(0, len(tokens), args.batch))
    n_batch = max(512, 1 << (longest - 1).bit_length())
    llm = Llama(args.model, n_threads=args.threads, n_threads_batch=args.threads,
                n_ctx=n_batch, n_batch=n_batch, n_ubatch=n_batch, embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST, verbose=False)
    if args.dump_tokens:
        with open(args.dump_tokens, "w") as f:
            for t in tokens:
                f.write(" ".join(map(str, t)) + "\n")

    batches = [tokens[i:i + args.batch] for i in range(0, len(tokens), args.batch)]
    run = prefill_runner(llm)

    run(batches[0])  # warm-up
    latencies = []
    start = time.perf_counter()
    for b in batches:
        t0 = time.perf_counter()
        run(b)
        latencies.append((time.perf_counter() - t0) * 1000.0)
    seconds = time.perf_counter() - start
    n_tokens = sum(len(t) for t in tokens)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "engine": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "batch": args.batch,
        "threads": args.threads,
        "tickets": len(tokens),
        "tokens": n_tokens,
        "seconds": round(seconds, 4),
        "tickets_per_s": round(len(tokens) / seconds, 2),
        "tokens_per_s": round(n_tokens / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "peak_rss_mb": round(rss_mb, 1),
    }))


if __name__ == "__main__":
    sys.exit(main())
