#!/usr/bin/env bash
# Side-by-side prefill benchmark (issue #6): Triage's Vulkan backend against
# llama.cpp's Vulkan backend on the same device, with both CPU engines beside
# them. A benchmark program that prints figures; not part of CI or ctest.
#
#   ops/vulkan_peer_bench.sh            (or: ops/bench.sh vulkan-peer)
#
# One run prints, for each batch size, prefill tokens/s of:
#   triage vulkan     `triage bench --backend vulkan`: vk_model::forward()
#   llama.cpp vulkan  llama-cpp-python built with GGML_VULKAN, every layer
#                     offloaded (n_gpu_layers = -1), ops/vulkan_peer_bench.py
#   triage cpu        `triage bench --backend cpu`: the CPU engine
#   llama.cpp cpu     llama-cpp-python's CPU build, n_gpu_layers = 0
# plus the Vulkan device each side ran on, layers offloaded and graph splits
# (1 = the whole graph on the device), and the versions.
#
# What every figure is (kept the same on all four): the first PEER_N (32)
# non-empty tickets of PEER_DATA's `text` column, as the classifier feeds
# them (its default prompt template is "{text}"; no BOS, SmolLM2 has none;
# llama.cpp and Triage tokenize alike, the token counts are printed and
# compared); a batch of B tickets is one forward pass / one llama_decode
# (B = 1: one ticket per pass, the way llama-bench's pp test evaluates one
# prompt; llama.cpp's KV cache is cleared before each decode, n_batch =
# n_ubatch large enough for the whole batch); the output is each ticket's
# final-norm hidden state of the last token, read back to the host (no
# vocabulary-wide output layer on either side). Each side first runs one
# untimed full pass over all tickets (pipelines, buffers, page-in); the
# figure is total tokens / wall seconds of the next full pass. CPU threads:
# one per core on all four (llama.cpp's n_threads = nproc; Triage's default).
#
# The device: both are pinned to the same Vulkan physical-device index
# (PEER_DEVICE; default: the first discrete GPU, else integrated, else the
# first device, from `vulkaninfo --summary`, else 0), through
# TRIAGE_VULKAN_DEVICE and GGML_VK_VISIBLE_DEVICES. Pinning also makes
# llama.cpp use a CPU-type device such as Mesa's lavapipe, which it skips
# by default (ggml-vulkan.cpp: only discrete/integrated GPUs are picked
# unless GGML_VK_VISIBLE_DEVICES names the device).
#
# Environment:
#   PEER_N (32), PEER_BATCHES ("1 32"), PEER_DATA (data/banking77/train.csv),
#   PEER_MODEL (~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf),
#   PEER_DEVICE (see above), PEER_VK_PYTHON
#   (~/.cache/triage/llama-vk-venv/bin/python), PEER_CPU_PYTHON
#   (~/.cache/triage/llama-venv/bin/python), PEER_TRIAGE (a prebuilt triage
#   binary; default: build target `triage` in BENCH_BUILD_DIR, default build),
#   PEER_LOG_DIR (llama.cpp's logs; default a temporary directory).
# A missing python skips that engine with a note.
#
# The Vulkan llama-cpp-python (not installed by ops/setup.sh: it compiles
# llama.cpp's shaders, about an hour on 2 shared cores):
#   pip download --no-deps --no-binary=:all: llama-cpp-python==0.3.36; untar
#   python3 -m venv ~/.cache/triage/llama-vk-venv
#   CMAKE_ARGS="-DGGML_VULKAN=on -DGGML_NATIVE=on -DLLAVA_BUILD=OFF
#     -DCMAKE_PREFIX_PATH=$SPIRV/usr -DCMAKE_CXX_FLAGS=-I$SPIRV/usr/include" \
#   CMAKE_BUILD_PARALLEL_LEVEL=2 ~/.cache/triage/llama-vk-venv/bin/pip install \
#     ./llama_cpp_python-0.3.36
# It needs glslc, the Vulkan headers and loader (libvulkan-dev) and
# SPIRV-Headers (Debian: spirv-headers; $SPIRV above is where its .deb was
# unpacked; ggml-vulkan's CMake finds the package but does not add its
# include directory, hence the -I). Debian 12's Vulkan headers (1.3.239) lack
# VK_EXT_layer_settings, which ggml-vulkan.cpp (ggml_vk_instance_init) uses
# unguarded: guard that block with #if defined(VK_EXT_layer_settings) and
# create the instance without it otherwise, or use headers >= 1.3.261. With Debian 12's glslc (shaderc
# 2023.2) llama.cpp builds no cooperative-matrix, integer-dot or bf16 shaders,
# so on a GPU its matmuls run without tensor cores: build with a newer glslc
# for a GPU comparison that is fair to llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${PEER_N:-32}"
batches="${PEER_BATCHES:-1 32}"
data="${PEER_DATA:-data/banking77/train.csv}"
model="${PEER_MODEL:-$HOME/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
vk_py="${PEER_VK_PYTHON:-$HOME/.cache/triage/llama-vk-venv/bin/python}"
cpu_py="${PEER_CPU_PYTHON:-$HOME/.cache/triage/llama-venv/bin/python}"
threads="$(nproc)"
logs="${PEER_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$logs"

if [ -n "${PEER_TRIAGE:-}" ]; then
  triage="$PEER_TRIAGE"
else
  build="${BENCH_BUILD_DIR:-build}"
  ops/build.sh --dir "$build" --target triage >/dev/null
  triage="$build/triage"
fi

# The device index both engines are pinned to.
if [ -z "${PEER_DEVICE:-}" ]; then
  PEER_DEVICE=0
  if command -v vulkaninfo >/dev/null; then
    PEER_DEVICE="$(vulkaninfo --summary 2>/dev/null | awk '
      /^GPU[0-9]+:/ { i = substr($1, 4, length($1) - 4) }
      /deviceType/ { t[i] = $3 }
      END {
        n = split("PHYSICAL_DEVICE_TYPE_DISCRETE_GPU PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU", pref, " ")
        for (p = 1; p <= n; p++) for (d = 0; d in t; d++) if (t[d] == pref[p]) { print d; exit }
        print 0
      }')"
  fi
fi
export TRIAGE_VULKAN_DEVICE="$PEER_DEVICE" GGML_VK_VISIBLE_DEVICES="$PEER_DEVICE"

results="$logs/results.jsonl"
: >"$results"
echo "load before: $(uptime)"
triage_device="$("$triage" bench --backend vulkan --model "$model" --data "$data" --n 1 \
  --batches 1 --llama-python none | sed -n "s/^engine: Vulkan on '\(.*\)'$/\1/p")"

# tag ENGINE into each JSON line of stdin, append to $results.
record() {
  python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        j = json.loads(line); j["row"] = sys.argv[1]; print(json.dumps(j))
' "$1" >>"$results"
}

for b in $batches; do
  for backend in vulkan cpu; do
    # Two passes at batch b: the first row is the untimed full warm-up pass.
    "$triage" bench --backend "$backend" --model "$model" --data "$data" --n "$n" \
      --batches "$b,$b" --llama-python none --json | tail -n 1 | record "triage $backend"
  done
  for side in vulkan cpu; do
    py="$vk_py" ngl=-1
    [ "$side" = cpu ] && py="$cpu_py" ngl=0
    if ! "$py" -c "import llama_cpp" 2>/dev/null; then
      echo "(llama.cpp $side skipped: no llama-cpp-python in $py)"
      continue
    fi
    "$py" ops/vulkan_peer_bench.py --model "$model" --data "$data" --n "$n" --batch "$b" \
      --threads "$threads" --n-gpu-layers "$ngl" --label "llama.cpp $side" \
      --log "$logs/llama-$side-b$b.log" | record "llama.cpp $side" ||
      echo "(llama.cpp $side failed at batch $b: see $logs/llama-$side-b$b.log)"
  done
done
echo "load after: $(uptime)"

python3 - "$results" "$triage_device" "$PEER_DEVICE" "$n" "$data" "$logs" <<'EOF'
import json, sys
path, triage_device, index, n, data, logs = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
print(f"\n{n} tickets from {data}; Vulkan device index {index}")
print(f"  triage vulkan device:    {triage_device or '?'}")
for r in rows:
    if r["row"] == "llama.cpp vulkan":
        print(f"  llama.cpp vulkan device: {r['device']} (layers offloaded {r['offloaded']}, "
              f"graph splits {r['graph_splits']})")
        break
seen = set()
for r in rows:
    if r["row"].startswith("llama.cpp") and r["row"] not in seen:
        seen.add(r["row"])
        print(f"  {r['row']}: llama-cpp-python {r['llama_cpp_python']}, ggml {r['ggml']} "
              f"({r['ggml_commit']})")
print(f"  llama.cpp logs: {logs}")
print(f"\n{'engine':<18} {'batch':>5} {'tokens':>7} {'tokens/s':>10} {'ms/pass':>9}")
for r in rows:
    secs = r.get("seconds") or r["tokens"] / r["tokens_per_s"]
    print(f"{r['row']:<18} {r['batch']:>5} {r['tokens']:>7} {r['tokens_per_s']:>10.1f} "
          f"{secs * 1000:>9.0f}")
counts = {r["tokens"] for r in rows}
if len(counts) > 1:
    print(f"warning: the engines saw different token counts: {sorted(counts)}")
EOF
