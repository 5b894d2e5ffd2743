#!/usr/bin/env python3
"""Golden token ids for compute/tests/tokenizer_test.cc, made by llama.cpp.

Tokenizes a corpus of awkward strings with llama-cpp-python (the reference our
tokenizer must match id for id) and writes one JSON object per line:

  {"text": "...", "special": false, "ids": [...]}       valid UTF-8 input
  {"hex": "61ff62", "special": false, "ids": [...]}      raw bytes (invalid UTF-8)

The first line is a header, {"_meta": {...}}, recording the llama-cpp-python
version, the model file and its tokenizer.ggml.pre.

Four files come out of one run, all from the SmolLM2 vocabulary and merges:

  tokens_smollm2.jsonl            the model as it is (pre-tokenizer "smollm")
  tokens_smollm2_gpt2.jsonl       the same vocabulary relabelled "gpt-2"
  tokens_smollm2_llama_bpe.jsonl  ... "llama-bpe" (Llama 3 rules, ignore_merges)
  tokens_smollm2_qwen2.jsonl      ... "qwen2"

The relabelled variants are copies of the model's metadata with another
tokenizer.ggml.pre and no tensors, loaded with vocab_only=True: they exercise
each pre-tokenizer rule set of llama.cpp without needing the other models.
The C++ test builds the same variants with gguf::writer.

Run it from the repository root (a few seconds); the defaults reproduce the
committed files byte for byte:

  /root/.cache/triage/llama-venv/bin/python compute/tests/golden/make_tokens.py \
      [--model ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf] \
      [--banking77 /work/shared/data/banking77/train.csv]

For a local stress run, write a bigger corpus elsewhere and point the test
at it (the test reads $TRIAGE_SOURCE_DIR/compute/tests/golden):

  .../python compute/tests/golden/make_tokens.py --random 30000 --seed 7 \
      --out-dir /tmp/stress/compute/tests/golden
  TRIAGE_SOURCE_DIR=/tmp/stress build/compute/tokenizer_test --gtest_filter='*golden*'

The venv holds llama-cpp-python (pip install llama-cpp-python==0.3.36 in a
fresh venv gives the same); the Banking77 sample is optional but recorded
texts are committed, so the test never needs the data set.
"""

import argparse
import csv
import json
import os
import random
import struct
import sys
import tempfile

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))

# --- corpus -------------------------------------------------------------------

SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
    "<file_sep>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
    "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>",
    "<jupyter_output>", "<jupyter_script>", "<empty_output>",
]

FIXED = [
    # empty and whitespace
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\r", "\r\n", "\r\n\r\n", " \n", "\n ",
    " \t \n ", "a", " a", "a ", "  a", "a  ", "Hello world", " Hello world", "Hello world ",
    "Hello  world", "Hello   world", "   leading three", "trailing three   ",
    "multiple   spaces   inside  words", "tabs\tand\ttabs", "\t\tindented", "a\t\tb",
    "line1\nline2\n\nline4", "windows\r\nline\r\nendings\r\n", "mixed \t\n\r whitespace \n\t ",
    "  \n  \n  ", "word\n", "word\n\n", "\nword", "x \ny", "x  \n  y", "x\n \ny",
    "end with tab\t", "end with cr\r", "a \u00a0b", "\u00a0nbsp\u00a0", "em\u2003space",
    "ideographic\u3000space", "line\u2028separator", "para\u2029separator", "\u0085NEL\u0085",
    "vt\x0bff\x0c", "fs\x1cgs\x1drs\x1eus\x1f", " \x1c \x1d ", "\x1c\x1d a\x1fb", "\x00null\x00",
    "del\x7f", "zero\u200bwidth", "\ufeffBOM at start", "soft\u00adhyphen", "nbsp run \u00a0\u00a0\u00a0 x",
    "thin\u2009space", "narrow\u202fnbsp", "math\u205fspace", "ogham\u1680space",
    # contractions, all forms and cases
    "I'm", "don't", "we're", "they've", "she'll", "he'd", "it's", "IT'S", "DON'T", "WE'RE",
    "THEY'VE", "SHE'LL", "HE'D", "I'M", "We'Re", "They'Ve", "she'Ll", "it'S", "'s", "'t", "'re",
    "'ve", "'m", "'ll", "'d", "'S", "'RE", "'x", "''", "'''s", "rock 'n' roll", "o'clock",
    "l'été", "the dog's bone's", "'s at start", "end with '", "can't won't shouldn't",
    "y'all'd've", " 's", "'\u00e9", "don\u2019t curly", "l'1", "'ll'll",
    # numbers
    "0", "1", "12", "123", "1234", "12345", "1234567", "1234567890123", "3.14159",
    "1,000,000.00", "+1 (555) 123-4567", "555-0199", "+44 20 7946 0958", "2024-01-31T12:34:56Z",
    "0x1F 0b1010 1e-9", "v1.2.3", "007", "a1b2c3", "abc123def", "123abc", "1 2 3", "1  2",
    " 1", "  1", "x 1", "x  1", "\u0661\u0662\u0663 arabic-indic", "\u0967\u0968\u0969 devanagari digits",
    "x\u00b2 \u00b3", "\u00bd \u2153 \u00bc", "\u216b roman \u2167", "\u2460\u2461\u2462", "10 000",
    "$1,234.56", "\u20ac99,99", "\u00a35", "50%", "#42", "No.5", "4th 21st 3rd", "1.", ".5",
    "12:30pm", "\uff11\uff12\uff13 fullwidth digits",
    # scripts
    "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e", "na\u00efve fa\u00e7ade \u00c5ngstr\u00f6m",
    "e\u0301 combining acute", "\u00fcber \u00df stra\u00dfe", "\u0141\u00f3d\u017a \u017c\u00f3\u0142\u0107",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u30ab\u30bf\u30ab\u30ca",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4", "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u",
    "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48", "\ufb01 ligature \ufb02",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0", "\u0540\u0561\u0575\u0565\u0580\u0565\u0576",
    "\u1200\u1208\u1218 ethiopic", "\u13a0\u13a1 cherokee", "mixed English \u0438 \u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u4e2d\u6587",
    "\U00010400\U00010401 deseret", "\U0001d400\U0001d401 math bold",
    # emoji
    "\U0001f44d", "I love it \U0001f600\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea flags", "\u2764\ufe0f",
    "\U0001f44d\U0001f3fd", "text\U0001f642text", "keycap 1\ufe0f\u20e3", "\u2b50\u2728\U0001f525",
    "ok \U0001f44c.", "\U0001f600 \U0001f600  \U0001f600",
    # code
    "def f(x):\n    return x**2\n", "if (a && b) { c++; }", "<div class=\"x\">hi</div>",
    "SELECT * FROM users WHERE id = 42;", "$ ls -la ~/.config", "#include <stdio.h>",
    "a=b+c*d/e-f", "path/to/file.txt", "C:\\Users\\name\\file", "{\"json\": [1, 2, 3], \"k\": null}",
    "    four-space indent", "\tx = 1", "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "for i in range(10):\n\tprint(i)\n", "x->y; a::b; c<<=2; d>>>=3;", "fn main() -> Result<(), E> {}",
    "/* comment */ // line", "```python\nprint('hi')\n```", "<|", "|>", "<>", "< >",
    # URLs and emails
    "https://example.com/path?q=1&r=2#frag", "www.example.org", "support@example.com",
    "mailto:a.b+c@d.co.uk", "http://127.0.0.1:8080/", "ftp://files.example.net/~user/",
    "See https://bank.example/help.", "email me at JOHN.DOE@EXAMPLE.COM!",
    # punctuation
    "!!!", "?!?!", "...", "\u2026", "---", "\u2014 em dash \u2013 en dash", "\u201cquoted\u201d",
    "\u00abguillemets\u00bb", "\u00bfQu\u00e9?", "\u00a1Hola!", "(((nested)))", "@#$%^&*", "~`|\\",
    "a.b.c", "Hello!!! How are you???", "end.", " .", "  .", ". ", "!\n", "?\r\n", ")\n\n",
    "!!!\n\n\nx", "\u3002\u3001\uff01", "\u00a7 \u00b6 \u2020", "\u00a9 \u00ae \u2122", "+-*/=<>",
    # special tokens as text
    "<|im_start|>user\nHi<|im_end|>\n", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "text<|im_start|>text", "<|im_start|><|im_end|>", "<|im_start", "<|IM_START|>",
    "< |im_start|>", "<|endoftext|><|endoftext|>", "x <|im_end|> y", " <|im_start|> ",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhere is my card?<|im_end|>\n<|im_start|>assistant\n",
    "<reponame>triage<file_sep>a.py<filename>b.py<gh_stars>10",
    "<issue_start>bug<issue_comment>fix<issue_closed>",
    "<jupyter_start><jupyter_text>t<jupyter_code>c<jupyter_output><jupyter_script><empty_output>",
    "<|im_start|><|im_start|>", "<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>\n",
    "a<|endoftext|>", "<|endoftext|>b", "<<|im_start|>>", "<|im_start|>|>",
    # real support tickets
    "Hi team,\n\nI ordered a replacement card on 3 March (order #A-10293) and it still hasn't "
    "arrived. My address is 12 Rue de la Paix, 75002 Paris. Can you check?\n\nThanks,\nZo\u00e9",
    "URGENT!!! I was charged TWICE for the same purchase ($49.99) on 2024-05-17. "
    "Txn IDs: 8f3a-22c1 and 8f3a-22c2. Please refund ASAP :(",
    "My app keeps crashing when I open 'Transfers' -> 'International'. iOS 17.4.1, iPhone 13. "
    "Error: \"Something went wrong (code 0x80070005)\".",
    "Bonjour, je n'arrive pas \u00e0 activer ma carte. Le code ne marche pas. Merci d'avance !",
    "\u041f\u043e\u0447\u0435\u043c\u0443 \u0441 \u043c\u0435\u043d\u044f \u0441\u043d\u044f\u043b\u0438 "
    "\u043a\u043e\u043c\u0438\u0441\u0441\u0438\u044e 2,50 \u20ac \u0437\u0430 \u043f\u0435\u0440\u0435\u0432\u043e\u0434?",
    "  can u help?? my pin is blocked   \n\n\n",
    # long runs
    "a" * 300, " " * 50, "\n" * 20, "ab" * 100, "1" * 50, "\U0001f600" * 20, "!" * 40,
    " " * 17 + "x", "\t" * 9 + "y", "z" + " " * 33, "hello " * 30,
    "\u0430" * 60, "\u4e00" * 40, "word " * 5 + "\n" * 3 + "  " * 4,
]

# Raw byte strings: invalid UTF-8 must not crash, and llama.cpp maps each bad
# lead byte to U+FFFD. Code points above U+10FFFF (e.g. F4 90 80 80) make
# llama.cpp throw (std::terminate), so they are left out of the golden data;
# our tokenizer maps them to U+FFFD as well (tested separately).
RAW = [
    b"\xff", b"abc\x80def", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xf0\x9f\x98",
    b"\xf0\x9f\x98 x", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf8\x88\x80\x80\x80", b"\xfe\xfe\xff\xff", b"\x80\x80\x80", b"ok\xffok \xfe", b"  \xff  ",
    b"\xe4\xbd\xa0\xe5", b"1\xff2", b"it\xff's", b"\xff<|im_start|>\xfe",
]


def random_corpus(n, seed):
    """Short strings drawn from a pool of characters that sit on the edges of
    the pre-tokenizer rules: whitespace kinds, digits of several scripts,
    apostrophes, letters, marks, punctuation, symbols and emoji."""
    pool = (
        [" "] * 8 + ["\t", "\n", "\r", "\u00a0", "\u3000", "\u2028", "\x0b", "\x1c", "\u0085"] * 2
        + list("aAzZeE") + ["s", "t", "m", "d", "l", "r", "v", "S", "T", "L", "E"]
        + ["'"] * 4 + ["\u2019", "\""]
        + list("0123456789") + ["\u0663", "\u00b2", "\u00bd", "\u2167", "\uff15"]
        + list(".,;:!?-_/\\()[]{}<>|@#$%^&*+=~`")
        + ["\u00e9", "\u00df", "\u0416", "\u03a9", "\u05d0", "\u0639", "\u0915", "\u094d", "\u4e2d",
           "\u3042", "\u0e01", "\u0e31", "\ud55c", "\u0301", "\u200d", "\ufe0f",
           "\U0001f600", "\U0001f44d", "\U0001f3fd", "\U0001f1eb", "\u2026", "\u00ab", "\u20ac",
           "\u00a9", "\u2122", "\u200b", "\ufeff", "\x00", "\x7f"]
        + ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|", "|>"]
    )
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30])
        out.append("".join(rng.choice(pool) for _ in range(k)))
    return out


def banking77_sample(path, every):
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows[::every]]


# --- GGUF metadata rewrite (for the relabelled variants) ----------------------

SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


def _skip_value(buf, off, vtype):
    if vtype in SCALAR_SIZES:
        return off + SCALAR_SIZES[vtype]
    if vtype == STRING:
        (n,) = struct.unpack_from("<Q", buf, off)
        return off + 8 + n
    if vtype == ARRAY:
        etype, n = struct.unpack_from("<IQ", buf, off)
        off += 12
        if etype in SCALAR_SIZES:
            return off + n * SCALAR_SIZES[etype]
        for _ in range(n):
            off = _skip_value(buf, off, etype)
        return off
    raise ValueError(f"unknown GGUF value type {vtype}")


def read_metadata(path):
    """[(key, type, raw value bytes)] of a GGUF v2/v3 file, in file order."""
    with open(path, "rb") as f:
        buf = f.read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    assert magic == b"GGUF" and version in (2, 3), path
    off = 24
    kvs = []
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", buf, off)
        key = buf[off + 8 : off + 8 + klen].decode()
        off += 8 + klen
        (vtype,) = struct.unpack_from("<I", buf, off)
        off += 4
        end = _skip_value(buf, off, vtype)
        kvs.append((key, vtype, buf[off:end]))
        off = end
    return kvs


def write_metadata_only(path, kvs):
    out = bytearray(struct.pack("<4sIQQ", b"GGUF", 3, 0, len(kvs)))
    for key, vtype, raw in kvs:
        k = key.encode()
        out += struct.pack("<Q", len(k)) + k + struct.pack("<I", vtype) + raw
    with open(path, "wb") as f:
        f.write(out)


def with_pre(kvs, pre):
    s = pre.encode()
    return [
        (k, t, struct.pack("<Q", len(s)) + s if k == "tokenizer.ggml.pre" else raw)
        for k, t, raw in kvs
    ]


# --- main ---------------------------------------------------------------------


def records(llm, texts, raws):
    for text in texts:
        data = text.encode("utf-8")
        yield {"text": text, "special": False, "ids": llm.tokenize(data, add_bos=False, special=False)}
        if "<" in text:
            yield {"text": text, "special": True, "ids": llm.tokenize(data, add_bos=False, special=True)}
    for data in raws:
        yield {"hex": data.hex(), "special": False, "ids": llm.tokenize(data, add_bos=False, special=False)}
        if b"<" in data:
            yield {"hex": data.hex(), "special": True, "ids": llm.tokenize(data, add_bos=False, special=True)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--banking77", default="/work/shared/data/banking77/train.csv")
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--random", type=int, default=400,
                    help="random strings in the corpus (more for a local stress run)")
    ap.add_argument("--seed", type=int, default=20240531)
    args = ap.parse_args()

    texts = FIXED + [s for s in SPECIALS] + random_corpus(args.random, seed=args.seed)
    texts += banking77_sample(args.banking77, every=50)
    # Order kept, duplicates dropped: each line tests something once.
    texts = list(dict.fromkeys(texts))

    kvs = read_metadata(args.model)
    model_pre = next(raw for k, _, raw in kvs if k == "tokenizer.ggml.pre")[8:].decode()
    variants = [("tokens_smollm2.jsonl", None), ("tokens_smollm2_gpt2.jsonl", "gpt-2"),
                ("tokens_smollm2_llama_bpe.jsonl", "llama-bpe"), ("tokens_smollm2_qwen2.jsonl", "qwen2")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, pre in variants:
            path = args.model
            if pre is not None:
                path = os.path.join(tmp, f"{pre}.gguf")
                write_metadata_only(path, with_pre(kvs, pre))
            llm = llama_cpp.Llama(path, vocab_only=True, verbose=False)
            meta = {
                "llama_cpp_python": llama_cpp.__version__,
                "model": os.path.basename(args.model),
                "pre": pre or model_pre,
                "generated_by": "compute/tests/golden/make_tokens.py",
            }
            out = os.path.join(args.out_dir, name)
            n = 0
            with open(out, "w", encoding="utf-8") as f:
                f.write(json.dumps({"_meta": meta}) + "\n")
                for rec in records(llm, texts, RAW):
                    f.write(json.dumps(rec, ensure_ascii=True) + "\n")
                    n += 1
            del llm
            print(f"{out}: {n} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
