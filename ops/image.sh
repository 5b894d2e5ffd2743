#!/usr/bin/env bash
# Builds the worker image from the Dockerfile and checks that it works.
#
#   ops/image.sh [--tag T] [--no-bake] [--no-check] [--ca-bundle FILE]
#
# --ca-bundle: the CA bundle pip should trust while the build stage downloads
# the model (a TLS-intercepting proxy); default: $PIP_CERT when it is set.
# Given to the build as the secret ca_bundle, so no layer keeps it.
#
# Builder: `docker build` when a Docker engine answers, otherwise buildah
# (Debian package buildah; runs without a daemon). The base images debian:12
# and debian:12-slim must be pullable or already in the local store.
# Then, in a container of the new image (buildah from/run, or docker run):
#   - the process runs as uid 10001, not root;
#   - the binary finds every shared library (`triage --help`) and the Vulkan
#     loader is there (`triage devices` answers, with or without a device);
#   - with the model baked in, `triage classify` on two tickets prints two
#     JSON lines with a category (the real model and adapter, on the CPU).
# Takes ~10-20 minutes on 2 cores (the build stage compiles the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=localhost/triage:dev
bake=1
check=1
ca_bundle="${PIP_CERT:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --no-bake) bake=0; shift ;;
    --no-check) check=0; shift ;;
    --ca-bundle) ca_bundle="$2"; shift 2 ;;
    *) echo "ops/image.sh: unknown argument '$1' (see the header of ops/image.sh)" >&2; exit 2 ;;
  esac
done
log() { echo "image.sh: $*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  builder=docker
elif command -v buildah >/dev/null; then
  builder=buildah
else
  log "neither a Docker engine nor buildah found (apt-get install buildah)"; exit 1
fi

secret=()
if [[ -n $ca_bundle ]]; then
  [[ -s $ca_bundle ]] || { log "--ca-bundle $ca_bundle: no such file, or empty"; exit 2; }
  secret=(--secret "id=ca_bundle,src=$ca_bundle")
fi
log "building $tag with $builder (BAKE_MODEL=$bake${ca_bundle:+, CA bundle $ca_bundle})"
start=$(date +%s)
if [[ $builder == docker ]]; then
  DOCKER_BUILDKIT=1 docker build "${secret[@]}" --build-arg BAKE_MODEL="$bake" -t "$tag" .
else
  # --format docker: the OCI format has no SHELL, and the Dockerfile's RUN
  # lines rely on bash with pipefail.
  buildah bud --format docker --isolation chroot --layers "${secret[@]}" --build-arg BAKE_MODEL="$bake" \
    -t "$tag" -f Dockerfile .
fi
log "built in $(( $(date +%s) - start )) s"
[[ $check == 1 ]] || exit 0

# One command in a fresh container of the image, as its entrypoint runs it.
run() {
  if [[ $builder == docker ]]; then
    docker run --rm -i --entrypoint "$1" "$tag" "${@:2}"
  else
    local ctr
    ctr=$(buildah from --pull=never "$tag")
    local rc=0
    buildah run --isolation chroot --user 10001:10001 "$ctr" -- "$@" || rc=$?
    buildah rm "$ctr" >/dev/null
    return $rc
  fi
}

uid=$(run id -u)
[[ $uid == 10001 ]] || { log "FAIL: the image runs as uid $uid, not 10001"; exit 1; }
log "runs as uid $uid"
run triage --help >/dev/null || { log "FAIL: triage --help"; exit 1; }
run sh -c 'ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 >/dev/null' ||
  { log "FAIL: no Vulkan loader in the image"; exit 1; }
log "triage devices: $(run triage devices 2>&1 | head -3 | tr '\n' ' ')"
if [[ $bake == 1 ]]; then
  out=$(printf 'I still have not received my new card\nmy top-up failed twice today\n' |
        run triage classify --model /opt/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf \
          --adapter /opt/triage/topology/adapters/banking.gguf \
          --config /opt/triage/topology/default.yaml --threads 2 -)
  n=$(grep -c '"category"' <<<"$out" || true)
  [[ $n == 2 ]] || { log "FAIL: triage classify in the image printed: $out"; exit 1; }
  log "classify in the image: $(head -c 300 <<<"$out")"
fi
log "image $tag checked"
