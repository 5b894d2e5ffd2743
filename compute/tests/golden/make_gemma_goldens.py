#!/usr/bin/env python3
"""Golden outputs of llama.cpp for Gemma 3 270M (Q4_K_M), for
compute/tests/tokenizer_test.cc (SentencePiece tokens) and
compute/tests/model_gemma3_test.cc (logits, greedy continuations).

Run from the repository root with the llama-cpp-python venv that
`ops/setup.sh --with-llama-cpp` builds (llama-cpp-python 0.3.36); the model
comes from `ops/setup.sh` (~/.cache/triage/models/gemma-3-270m-q4_k_m.gguf):

    /root/.cache/triage/llama-venv/bin/python compute/tests/golden/make_gemma_goldens.py \
        [--model ~/.cache/triage/models/gemma-3-270m-q4_k_m.gguf] [--only tokens|logits]

It writes, next to this script:

  tokens_gemma.jsonl   the awkward-string corpus of make_tokens.py (same
                       texts, same seed) plus Gemma's own special tokens,
                       tokenized by llama.cpp: one JSON object per line,
                       {"text" | "hex", "special", "bos", "ids"}; "bos" is
                       add_special (Gemma adds <bos>), recorded both ways
                       for a subset. First line: {"_meta": {...}}.
  gemma_logits.json    per prompt: text, ids (add_bos=True, special=True),
                       the top 50 last-token logits (ids, values), and the
                       logits of a fixed sample of the vocabulary (every
                       SAMPLE_STRIDE-th id, as float16 in
                       gemma_logits_f16.bin, prompt after prompt), so that
                       tests can compute a cosine without storing 262k
                       floats per prompt; for two prompts a 32-token greedy
                       continuation with the top 5 of every step.
  gemma_logits_f16.bin  see above (n_prompts * ceil(n_vocab / SAMPLE_STRIDE)
                       little-endian float16 values).

The "long" prompt is over 512 tokens, so Gemma's sliding-window layers see
only part of it (the window is gemma3.attention.sliding_window = 512).

llama.cpp configuration of the committed logits (recorded in "_meta"):
llama-cpp-python 0.3.36's defaults, stated explicitly: flash attention off
(the non-flash path: F16 K/V cache, Q and the softmax weights rounded to F16
in the two attention products, what model_options::f16_attention
reproduces), type_k = type_v = F16, n_ubatch 512 (only "long" is split, 512 +
150), 2 threads. --kv-type 0 (F32 cache) and --flash-attn write the same files
for another configuration (use --out-dir). They were compared, with n_ubatch
7, as the reference's own reproducibility: llama.cpp against itself on the
25-token "ticket" prompt gives cosine 0.9968 (F32 cache), 0.9922 (flash
attention), 0.9932 (n_ubatch 7, i.e. only a different summation order), while
the other prompts stay at 0.9993 .. 1.0 (see model_gemma3_test.cc). The
n_ubatch 7 figure is recorded per prompt ("llama_self_cosine"): the test
bounds the engine's cosine per prompt by min(0.999, that figure).
"""
import argparse
import json
import os
import sys

import numpy as np
import llama_cpp
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_tokens  # noqa: E402  (the shared corpus)
from make_logits import LONG_TEXT  # noqa: E402

N_THREADS = 2
N_CTX = 2048
TOP_K = 50
SAMPLE_STRIDE = 64
GREEDY_TOKENS = 32

GEMMA_SPECIALS = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[multimodal]", "<start_of_turn>",
    "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<unused0>", "<unused99>",
]
GEMMA_TEXTS = [
    "<start_of_turn>user\nWhere is my card?<end_of_turn>\n<start_of_turn>model\n",
    "<bos>Hello", "Hello<eos>", "x <end_of_turn> y", "<start_of_turn", "<START_OF_TURN>",
    "\u2581already escaped \u2581\u2581", "\u2581", "<0x41>", "<0x0A> literal byte token text",
    "    \n    \n", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t",
    " " * 40, "a" + " " * 31 + "b", "\U0001F9D1\u200D\U0001F4BB \U000E0041 tag char",
    "\uFFFD replacement", "\U0010FFFF last code point",
]

PROMPTS = [
    ("short", "Hello"),
    ("capital", "The capital of France is"),
    ("ticket",
     "My card payment was declined twice at the supermarket today, but the money still "
     "left my account. Can you refund it?"),
    ("chat",
     "<start_of_turn>user\nClassify this support ticket: I lost my card yesterday, please "
     "block it before someone uses it.<end_of_turn>\n<start_of_turn>model\n"),
    ("unicode",
     "Café crème — naïve façade? 日本語のテキスト, emoji 🚀🙂, Ünïcödé ½ €100 ≠ 99¢. Привет!"),
    ("long", LONG_TEXT + "\n\n---\n\n" + LONG_TEXT),
]
GREEDY = {"capital", "chat"}


def token_records(llm, texts, raws):
    for i, text in enumerate(texts):
        data = text.encode("utf-8")
        yield {"text": text, "special": False, "bos": False,
               "ids": llm.tokenize(data, add_bos=False, special=False)}
        if "<" in text:
            yield {"text": text, "special": True, "bos": False,
                   "ids": llm.tokenize(data, add_bos=False, special=True)}
        if i % 10 == 0:
            yield {"text": text, "special": False, "bos": True,
                   "ids": llm.tokenize(data, add_bos=True, special=False)}
    for data in raws:
        yield {"hex": data.hex(), "special": False, "bos": False,
               "ids": llm.tokenize(data, add_bos=False, special=False)}
        if b"<" in data:
            yield {"hex": data.hex(), "special": True, "bos": False,
                   "ids": llm.tokenize(data, add_bos=False, special=True)}


def make_tokens_file(model, out_dir, banking77):
    texts = (make_tokens.FIXED + make_tokens.SPECIALS + GEMMA_SPECIALS + GEMMA_TEXTS
             + make_tokens.random_corpus(400, seed=20240531))
    texts += make_tokens.banking77_sample(banking77, every=50)
    texts = list(dict.fromkeys(texts))
    # SentencePiece handles any byte string (no U+FFFD mapping), so the raw
    # cases include a code point above U+10FFFF too.
    raws = make_tokens.RAW + [b"\xf4\x90\x80\x80", b"a\xf4\x90\x80\x80b"]
    llm = Llama(model, vocab_only=True, verbose=False)
    meta = {"llama_cpp_python": llama_cpp.__version__, "model": os.path.basename(model),
            "generated_by": "compute/tests/golden/make_gemma_goldens.py"}
    out = os.path.join(out_dir, "tokens_gemma.jsonl")
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        f.write(json.dumps({"_meta": meta}) + "\n")
        for rec in token_records(llm, texts, raws):
            f.write(json.dumps(rec, ensure_ascii=True) + "\n")
            n += 1
    print(f"{out}: {n} cases", file=sys.stderr)


SELF_UBATCH = 7  # llama.cpp's micro-batch for its own reproducibility figure


def last_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)


def greedy(llm, tokens, n):
    llm.reset()
    llm.eval(tokens)
    out, steps = [], []
    for _ in range(n):
        s = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        top = np.argsort(-s, kind="stable")[:5]
        steps.append({"ids": [int(i) for i in top], "logits": [float(s[i]) for i in top]})
        out.append(int(top[0]))
        llm.eval([int(top[0])])
    return out, steps


def make_logits_file(model, out_dir, kv_type=None, flash_attn=False):
    kv = {} if kv_type is None else {"type_k": kv_type, "type_v": kv_type}
    llm = Llama(model, n_threads=N_THREADS, n_threads_batch=N_THREADS, n_ctx=N_CTX,
                n_batch=N_CTX, logits_all=True, flash_attn=flash_attn, verbose=False, **kv)
    n_vocab = llm.n_vocab()
    records, sampled = [], []
    for name, text in PROMPTS:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        logits = last_logits(llm, tokens)
        top = np.argsort(-logits, kind="stable")[:TOP_K]
        rec = {"name": name, "text": text, "ids": tokens,
               "top_ids": [int(i) for i in top], "top_logits": [float(logits[i]) for i in top]}
        sampled.append(logits[::SAMPLE_STRIDE].astype(np.float16))
        if name in GREEDY:
            rec["greedy"], rec["greedy_steps"] = greedy(llm, tokens, GREEDY_TOKENS)
        records.append(rec)
        print(f"{name}: {len(tokens)} tokens, top-1 {int(top[0])} "
              f"(margin {float(logits[top[0]] - logits[top[1]]):.3f})", file=sys.stderr)
    # The reference's own reproducibility: llama.cpp again, micro-batches of
    # SELF_UBATCH tokens (only the summation order changes), scored as the
    # test scores the engine (the sampled ids against their F16 golden
    # values, then the top 50). The test's per-prompt bound is
    # min(0.999, this cosine).
    other = Llama(model, n_threads=N_THREADS, n_threads_batch=N_THREADS, n_ctx=N_CTX,
                  n_batch=N_CTX, n_ubatch=SELF_UBATCH, logits_all=True, flash_attn=flash_attn,
                  verbose=False, **kv)
    for rec, s in zip(records, sampled):
        o = last_logits(other, rec["ids"])
        a = np.concatenate([o[::SAMPLE_STRIDE], o[rec["top_ids"]]]).astype(np.float64)
        b = np.concatenate([s.astype(np.float32), np.array(rec["top_logits"], dtype=np.float32)]).astype(np.float64)
        rec["llama_self_cosine"] = float(a @ b / np.sqrt((a @ a) * (b @ b)))
        print(f"{rec['name']}: llama.cpp n_ubatch {SELF_UBATCH} vs the golden: cosine "
              f"{rec['llama_self_cosine']:.6f}", file=sys.stderr)
    bin_name = "gemma_logits_f16.bin"
    with open(os.path.join(out_dir, bin_name), "wb") as f:
        for s in sampled:
            f.write(s.astype("<f2").tobytes())
    meta = {"llama_cpp_python": llama_cpp.__version__, "model": os.path.basename(model),
            "n_vocab": n_vocab, "sample_stride": SAMPLE_STRIDE,
            "n_sample": int(len(sampled[0])), "sample_file": bin_name, "top_k": TOP_K,
            "n_threads": N_THREADS, "n_batch": N_CTX, "n_ubatch": llm.context_params.n_ubatch,
            "flash_attn": bool(flash_attn), "self_check_n_ubatch": SELF_UBATCH, "kv_type": "f16" if kv_type is None else int(kv_type),
            "generated_by": "compute/tests/golden/make_gemma_goldens.py"}
    with open(os.path.join(out_dir, "gemma_logits.json"), "w", encoding="utf-8") as f:
        json.dump({"_meta": meta, "prompts": records}, f, ensure_ascii=True, indent=None)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/triage/models/gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--banking77", default="/work/shared/data/banking77/train.csv")
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--only", choices=["tokens", "logits"])
    ap.add_argument("--kv-type", type=int, help="type_k = type_v (ggml type: 0 F32, 1 F16); "
                    "default: the library's (F16)")
    ap.add_argument("--flash-attn", action="store_true", help="flash attention (default off)")
    args = ap.parse_args()
    if args.only in (None, "tokens"):
        make_tokens_file(args.model, args.out_dir, args.banking77)
    if args.only in (None, "logits"):
        make_logits_file(args.model, args.out_dir, args.kv_type, args.flash_attn)


if __name__ == "__main__":
    main()
