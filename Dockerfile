# SensorFleet as a container image, for deploy/kubernetes (docs/distributed.md).
#   docker build -t REGISTRY/sensorfleet:TAG . && docker push REGISTRY/sensorfleet:TAG
# Not built on the project's machines (no Docker engine there); DeployManifestTests checks that
# the build command is the one Scripts/demo uses and that the runtime packages cover every
# shared library the binary needs.

# --- builder: the Swift toolchain, the C libraries' headers, a release build ---
ARG SWIFT_IMAGE=swift:6.3-bookworm
FROM ${SWIFT_IMAGE} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmosquitto-dev libssl-dev libsqlite3-dev libyaml-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest first, so that the dependencies are fetched once per Package.swift change.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
# The Swift standard library and Foundation inside the binary: the runtime image needs no toolchain.
RUN swift build -c release --product sensorfleet --static-swift-stdlib \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/sensorfleet" /out/sensorfleet

# --- runtime: Debian with the C libraries the binary links, a non-root user ---
FROM debian:bookworm-slim
# libmosquitto1 (MQTT), libssl3 (TLS, certificates), libsqlite3-0 (the durable outbox, CSQLite
# links the system SQLite), libyaml-0-2 (reading the fleet files); libc6, libgcc-s1 and
# libstdc++6 come with the base image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmosquitto1 libssl3 libsqlite3-0 libyaml-0-2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sensorfleet \
 && useradd --system --uid 10001 --gid sensorfleet --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin sensorfleet
COPY --from=builder /out/sensorfleet /usr/local/bin/sensorfleet
USER 10001:10001
# --metrics-listen 0.0.0.0:9464 in deploy/kubernetes/bench-job.yaml
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/sensorfleet"]
CMD ["--help"]
