#!/usr/bin/env bash
# Build the clinic image with plain docker, pulling nothing: FROM scratch plus
# the release `clinic` binary and the shared libraries `ldd` says it loads
# (the dynamic loader among them). Tagged chaperone-clinic:<first 16 hex
# digits of the binary's SHA-256>, the same tag `chaperone` computes, so
# `--target containers` finds it and never rebuilds it.
#
#   ci/build-images.sh            # builds target/release/clinic first if missing
#   CHAPERONE_CLINIC_BIN=path ci/build-images.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
bin="${CHAPERONE_CLINIC_BIN:-$target_dir/release/clinic}"
if [[ ! -x "$bin" ]]; then
  if [[ -n "${CHAPERONE_CLINIC_BIN:-}" ]]; then
    echo "error: no clinic binary at $bin (CHAPERONE_CLINIC_BIN)" >&2
    exit 2
  fi
  echo "building the release clinic binary (cargo build --release -p clinic)"
  cargo build --release -p clinic --locked
fi

tag="$(sha256sum "$bin" | cut -c1-16)"
image="chaperone-clinic:$tag"
if docker image inspect "$image" >/dev/null 2>&1 && [[ "${1:-}" != "--force" ]]; then
  echo "$image is up to date for $bin ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
  exit 0
fi

started=$(date +%s%N)
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin"
cp "$bin" "$ctx/rootfs/usr/local/bin/clinic"
# `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2 (0x...)`.
ldd "$bin" | awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}' | sort -u | while read -r lib; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
LABEL dev.chaperone.image=clinic
ENTRYPOINT ["/usr/local/bin/clinic"]
DOCKERFILE
docker build --quiet -t "$image" "$ctx" >/dev/null
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "built $image from $bin in ${elapsed_ms} ms ($size bytes)"
