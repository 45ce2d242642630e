#!/usr/bin/env bash
# Fuzzing, bounded, for CI (and for a quick local run): builds the fuzz crate
# (fuzz/, cargo-fuzz), runs every target for FUZZ_SECONDS on the clean clinic
# (any crash fails), then checks that `flows` finds each fault of
# FUZZ_FIND_FAULTS from the checked-in seed corpus within FUZZ_FIND_RUNS runs,
# and that each crash imports to a scenario that replays.
#
# Knobs (environment): FUZZ_SECONDS (default 60 per target), FUZZ_FIND_RUNS
# (default 100000), FUZZ_FIND_SEED (default 1), FUZZ_FIND_FAULTS (default
# "upgrade-latest-call rebook-reuses-consultation upgrade-phantom"),
# FUZZ_TOOLCHAIN=stable (use the stable path even where nightly is installed).
# Needs: cargo-fuzz (installed when missing); nightly for the address
# sanitizer, else stable with `-s none` (coverage only, no sanitizer).
#
# Built without trace-compares: `flows` mutates whole actions itself (its
# custom mutator), and comparison tracing through the whole HTTP stack cost a
# third of each execution. `-len_control` is off by default once a custom
# mutator is present; it is turned back on so inputs start short.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
find_runs="${FUZZ_FIND_RUNS:-100000}"
find_seed="${FUZZ_FIND_SEED:-1}"
read -r -a find_faults <<<"${FUZZ_FIND_FAULTS:-upgrade-latest-call rebook-reuses-consultation upgrade-phantom}"
# libFuzzer options for `flows` (also fuzz/matrix.sh's default).
flows_opts=(-len_control=100 -entropic=0)
targets=(flows scenario_parse clinic_requests)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

# The same flags for build and run, or `cargo fuzz run` rebuilds.
if [[ "${FUZZ_TOOLCHAIN:-}" != stable ]] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    flags=(--debug-assertions --no-trace-compares)
    echo "toolchain: nightly (address sanitizer)"
else
    fuzz=(cargo fuzz)
    flags=(--debug-assertions --no-trace-compares --sanitizer none)
    echo "toolchain: stable (no nightly, or FUZZ_TOOLCHAIN=stable): --sanitizer none, coverage only"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

started=$SECONDS
# The fuzz crate is its own workspace: the root's fmt and tests skip it.
cargo fmt --manifest-path fuzz/Cargo.toml --all --check
# Its unit tests show each property can fail (planted faults) and holds on
# the seeds; they build for the host, apart from the instrumented targets.
# Not --locked: fuzz/Cargo.lock follows the root crate's path dependencies,
# and cargo only adds what a root change needs (as `cargo fuzz build` does).
cargo test --manifest-path fuzz/Cargo.toml --lib
echo "fuzz crate tests: $((SECONDS - started)) s"
"${fuzz[@]}" build "${flags[@]}"
echo "fuzz build: $((SECONDS - started)) s"

# libFuzzer's last status line: "#N DONE cov: .. exec/s: E ..." or "Done N runs in S second(s)".
rate() { grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$1" | tail -1 | awk '{ printf "%d runs in %d s = %d execs/s", $2, $5, ($5 > 0 ? $2 / $5 : $2) }'; }

failed=0
for target in "${targets[@]}"; do
    # New inputs go to the first corpus directory (a scratch one), so the
    # checked-in seeds stay as they are.
    mkdir -p "$work/$target" "$work/artifacts-$target"
    extra=()
    if [[ -f "fuzz/$target.dict" ]]; then extra+=("-dict=fuzz/$target.dict"); fi
    if [[ $target == flows ]]; then extra+=("${flows_opts[@]}"); fi
    log="$work/$target.log"
    echo "--- $target: ${seconds} s on the clean clinic"
    if env -u CHAPERONE_FUZZ_FAULTS "${fuzz[@]}" run "${flags[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -artifact_prefix="$work/artifacts-$target/" "${extra[@]}" >"$log" 2>&1; then
        echo "$target: no crash, $(rate "$log")"
    else
        failed=1
        echo "$target: FAILED (crash or error); the end of its log:"
        tail -n 40 "$log"
        for artifact in "$work/artifacts-$target"/*; do
            [[ -e "$artifact" ]] || continue
            mkdir -p "fuzz/artifacts/$target"
            cp "$artifact" "fuzz/artifacts/$target/"
            echo "artifact kept: fuzz/artifacts/$target/$(basename "$artifact")"
        done
    fi
done
if [[ $failed -ne 0 ]]; then
    echo "fuzzing failed on the clean clinic (a crash, or libFuzzer could not run)"
    exit 1
fi

# One fault: flows must find it within $find_runs runs from the seeds, and
# the crash must import to a scenario that replays to a violation.
find_fault() {
    local fault="$1" log="$work/find-$1.log" artifacts="$work/artifacts-find-$1"
    echo "--- flows must find $fault within $find_runs runs (seed $find_seed)"
    mkdir -p "$work/find-$fault" "$artifacts"
    if CHAPERONE_FUZZ_FAULTS="$fault" "${fuzz[@]}" run "${flags[@]}" flows "$work/find-$fault" fuzz/corpus/flows -- \
        -runs="$find_runs" -seed="$find_seed" -artifact_prefix="$artifacts/" "${flows_opts[@]}" >"$log" 2>&1; then
        tail -n 20 "$log"
        echo "flows did NOT find $fault within $find_runs runs"
        return 1
    fi
    local artifact runs
    artifact="$(find "$artifacts" -type f -name 'crash-*' | head -n 1)"
    if [[ -z "$artifact" ]] || ! grep -q 'privacy violation' "$log"; then
        tail -n 40 "$log"
        echo "flows stopped without a privacy-violation crash on $fault"
        return 1
    fi
    runs="$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
    if [[ -n "$runs" ]]; then runs="after about $runs runs"; else runs="by a seed input itself"; fi
    echo "$fault: found $runs: $(grep -m1 -o 'privacy violation at step [0-9]*[^;]*' "$log")"
    # The release binary: CI built it for the gate already, so no third build tree.
    cargo run --release --locked --quiet -- import-fuzz "$artifact" --fault "$fault" --out "$work/found-$fault.toml"
    set +e
    cargo run --release --locked --quiet -- replay "$work/found-$fault.toml" --repeat 3
    local code=$?
    set -e
    if [[ $code -ne 1 ]]; then
        echo "the scenario imported for $fault did not replay to a violation (exit $code)"
        return 1
    fi
}

for fault in "${find_faults[@]}"; do
    find_fault "$fault"
done
echo "fuzz: ok in $((SECONDS - started)) s"
