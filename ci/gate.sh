#!/usr/bin/env bash
# The CI gate: build the release binaries and the clinic image (nothing is
# pulled), then run `chaperone gate` against the containers. Extra arguments go
# to `chaperone gate` (e.g. --target my-services.toml --seeds 1,2,3,4).
# Writes chaperone-junit.xml and chaperone-gate.json; exits with the gate's
# code: 0 pass, 1 privacy violation or unmet scenario, 2 usage, 3 unknown.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p chaperone -p clinic
bash ci/build-images.sh
# This job's id: its containers carry it, and its clean-up removes only
# them, never a parallel job's on the same Docker host. CI sets it from its
# job id (see ci/README.md); otherwise it is unique to this shell.
export CHAPERONE_RUN_ID="${CHAPERONE_RUN_ID:-gate-$$-$(date +%s)}"
# Whatever happens to the gate, leave nothing of this job behind.
trap 'bash ci/cleanup.sh "$CHAPERONE_RUN_ID" >/dev/null 2>&1 || true' EXIT
set +e
"$target_dir/release/chaperone" gate --target containers \
  --junit chaperone-junit.xml --json chaperone-gate.json "$@"
code=$?
set -e
exit "$code"
