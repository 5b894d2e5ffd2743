#!/usr/bin/env python3
"""Golden outputs of llama.cpp for the CPU model tests (compute/tests/model_*).

Run from the repository root with the llama-cpp-python venv that
ops/setup.sh builds (llama-cpp-python 0.3.36, llama.cpp built from source):

    /root/.cache/triage/llama-venv/bin/python compute/tests/golden/make_logits.py \
        [--model ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf]

It writes, next to this script:

  logits.json      per prompt: text, token ids (tokenize(add_bos=False,
                   special=True); SmolLM2 has tokenizer.ggml.add_bos_token
                   false, so no BOS either way), the top 50 last-token logits
                   (ids and float32 values, descending), and for two prompts a
                   32-token greedy continuation (argmax at each step, computed
                   here from the logits rather than by a sampler) with the top
                   5 ids and logits of every step, so that tests can tell a
                   near-tie (a top-2 margin of a few hundredths) from an
                   error. Also
                   final-norm hidden states pooled over the sequence (last
                   token and mean, not normalized) for two prompts.
  logits_f16.bin   the full last-token logit vector of every prompt, in the
                   order of logits.json, as little-endian float16
                   (n_prompts * n_vocab values; about 100 KB per prompt).
  logits_blocks.bin  block-layout goldens: llama.cpp requantizes the model to
                   Q4_K_S, Q6_K and Q4_0 (scratch files in a temp dir), then
                   dequantizes each to F32 with its own code; for Q4_K, Q6_K
                   and Q4_0, the first 4 rows of the first ffn_down tensor of
                   that type (1536 columns, so K-quants apply; 576-column
                   tensors fall back to Q5_0) as llama.cpp encoded them, then
                   ggml's float values of the same rows. Described under
                   "blocks" in logits.json.

Regenerate only when the model or the prompts change; the tests compare the
engine against these files (cosine similarity, top-1, max abs difference,
identical greedy continuations).
"""
import argparse
import ctypes
import json
import os
import struct
import sys
import tempfile

import numpy as np
import llama_cpp
from llama_cpp import Llama

N_THREADS = 2
N_CTX = 2048
TOP_K = 50
GREEDY_TOKENS = 32

LONG_TEXT = (
    "Subject: Repeated failed transfers and a missing refund\n\n"
    "Hello support team,\n\n"
    "I am writing for the third time this month because my problem is still not solved. "
    "On the 3rd I tried to send 250 EUR to my landlord from my main account. The app showed "
    "the transfer as pending for two days, then it said the transfer had failed, but the "
    "money was never returned to my balance. I contacted you through the chat and an agent "
    "told me the refund would arrive within 5 working days. It is now the 19th and I still "
    "do not see it. In the meantime I had to borrow money from a friend to pay the rent, "
    "and my landlord charged me a late fee of 40 EUR.\n\n"
    "On top of that, yesterday my card was declined at the supermarket even though the app "
    "says I have enough money. I tried twice and both times the terminal said 'declined by "
    "issuer'. I was embarrassed and had to leave my groceries behind. I also noticed that my "
    "top-up from last Friday shows as completed but the amount is 10 EUR lower than what I "
    "sent, and there is no explanation of any fee in the statement.\n\n"
    "Could you please (1) tell me where the 250 EUR is, (2) explain why my card is being "
    "declined, (3) explain the missing 10 EUR, and (4) consider refunding the late fee, "
    "since it was caused by your delay? I have been a customer for six years and I am "
    "seriously considering closing my account if this is not resolved this week.\n\n"
    "Best regards,\nMaria"
)

PROMPTS = [
    ("short", "Hello"),
    ("capital", "The capital of France is"),
    ("ticket",
     "My card payment was declined twice at the supermarket today, but the money still "
     "left my account. Can you refund it?"),
    ("chatml",
     "<|im_start|>system\nYou are a support assistant. Classify the ticket.<|im_end|>\n"
     "<|im_start|>user\nI lost my card yesterday, please block it before someone uses it."
     "<|im_end|>\n<|im_start|>assistant\n"),
    ("unicode",
     "Café crème — naïve façade? 日本語のテキスト, emoji 🚀🙂, Ünïcödé ½ €100 ≠ 99¢. Привет!"),
    ("long", LONG_TEXT),
]
GREEDY = {"capital", "chatml"}
POOLED = {"ticket", "chatml"}


def last_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)


def greedy(llm, tokens, n):
    """The argmax continuation, with the top 5 (ids, logits) of every step."""
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


def pooled(model, tokens, pooling):
    # Llama.embed() would re-tokenize the text without special tokens, so the
    # tokens are decoded here directly, as embed() does internally.
    emb = Llama(model, n_threads=N_THREADS, n_threads_batch=N_THREADS, n_ctx=N_CTX,
                n_batch=N_CTX, embedding=True, pooling_type=pooling, verbose=False)
    emb._ctx.kv_cache_clear()
    emb._batch.reset()
    emb._batch.add_sequence(tokens, 0, False)
    emb._ctx.decode(emb._batch)
    ptr = llama_cpp.llama_get_embeddings_seq(emb._ctx.ctx, 0)
    return [float(ptr[i]) for i in range(emb.n_embd())]


# --- block-layout goldens ---

GGML_BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
              8: (32, 34), 12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}
BLOCK_ROWS = 4


def gguf_tensor(path, name=None, want_type=None):
    """(name, type code, ne, bytes of the first BLOCK_ROWS rows) of the tensor
    `name`, or of the first ffn_down tensor of type `want_type`."""
    with open(path, "rb") as f:
        data = f.read()
    off = 0

    def take(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, data, off)
        off += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def skip_value(t):
        nonlocal off
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if t == 8:
            n = take("Q")
            off += n
        elif t == 9:
            et, n = take("I"), take("Q")
            for _ in range(n):
                skip_value(et)
        else:
            off += sizes[t]

    assert data[:4] == b"GGUF"
    off = 4
    _version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    alignment = 32
    for _ in range(n_kv):
        n = take("Q")
        key = data[off:off + n].decode()
        off += n
        t = take("I")
        if key == "general.alignment":
            alignment = struct.unpack_from("<I", data, off)[0]
        skip_value(t)
    infos = {}
    for _ in range(n_tensors):
        n = take("Q")
        tname = data[off:off + n].decode()
        off += n
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        infos[tname] = (ne, take("I"), take("Q"))
    base = (off + alignment - 1) // alignment * alignment
    if name is None:
        name = next(n for n, (_, t, _) in infos.items()
                    if n.endswith("ffn_down.weight") and t == want_type)
    ne, t, toff = infos[name]
    bs, bb = GGML_BLOCK[t]
    row = ne[0] // bs * bb
    start = base + toff
    return name, t, ne, data[start:start + BLOCK_ROWS * row]


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = N_THREADS
    p.ftype = ftype
    p.allow_requantize = True
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({dst}) failed: {rc}")


@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):  # the quantizer warns about every fallback tensor
    pass


def block_goldens(model, out_path):
    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
    records = []
    with open(out_path, "wb") as out, tempfile.TemporaryDirectory() as tmp:
        for label, ftype, want in [("Q4_K_S", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S, 12),
                                   ("Q6_K", llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K, 14),
                                   ("Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, 2)]:
            q = os.path.join(tmp, "q.gguf")
            f = os.path.join(tmp, "f32.gguf")
            quantize(model, q, ftype)
            quantize(q, f, llama_cpp.LLAMA_FTYPE_ALL_F32)
            name, t, ne, raw = gguf_tensor(q, want_type=want)
            _, tf, _, floats = gguf_tensor(f, name)
            assert tf == 0
            records.append({"ftype": label, "tensor": name, "type": t, "cols": ne[0],
                            "rows": BLOCK_ROWS, "offset": out.tell(), "n_bytes": len(raw),
                            "float_offset": out.tell() + len(raw)})
            out.write(raw)
            out.write(floats)
            os.remove(q)
            os.remove(f)
            print(f"blocks {label}: type {t}, {len(raw)} bytes", file=sys.stderr)
    return records


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=here)
    args = ap.parse_args()

    llm = Llama(args.model, n_threads=N_THREADS, n_threads_batch=N_THREADS, n_ctx=N_CTX,
                n_batch=N_CTX, logits_all=True, verbose=False)
    n_vocab = llm.n_vocab()
    records = []
    full = []
    for name, text in PROMPTS:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        logits = last_logits(llm, tokens)
        top = np.argsort(-logits, kind="stable")[:TOP_K]
        rec = {
            "name": name,
            "text": text,
            "tokens": [int(t) for t in tokens],
            "top_ids": [int(i) for i in top],
            "top_logits": [float(logits[i]) for i in top],
        }
        if name in GREEDY:
            rec["greedy"], rec["greedy_top5"] = greedy(llm, tokens, GREEDY_TOKENS)
            rec["greedy_text"] = llm.detokenize(rec["greedy"]).decode("utf-8", errors="replace")
        if name in POOLED:
            rec["pooled_last"] = pooled(args.model, tokens, llama_cpp.LLAMA_POOLING_TYPE_LAST)
            rec["pooled_mean"] = pooled(args.model, tokens, llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        records.append(rec)
        full.append(logits.astype("<f2"))
        print(f"{name}: {len(tokens)} tokens, top-1 {int(top[0])} ({logits[top[0]]:.4f})",
              file=sys.stderr)

    meta = {
        "generator": "compute/tests/golden/make_logits.py",
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(),
        "model": os.path.basename(args.model),
        "model_bytes": os.path.getsize(args.model),
        "n_threads": N_THREADS,
        "n_ctx": N_CTX,
        "n_vocab": n_vocab,
        "logits_f16": "logits_f16.bin",
        "prompts": records,
        "blocks_file": "logits_blocks.bin",
        "blocks": block_goldens(args.model, os.path.join(args.out, "logits_blocks.bin")),
    }
    with open(os.path.join(args.out, "logits.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
        f.write("\n")
    np.concatenate(full).tofile(os.path.join(args.out, "logits_f16.bin"))


if __name__ == "__main__":
    main()
