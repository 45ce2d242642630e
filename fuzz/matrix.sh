#!/usr/bin/env bash
# The `flows` detection matrix: for every sequential fault (each checked-in
# scenario under scenarios/ that plants faults and sends no steps together)
# and every libFuzzer seed, run an already built `flows` binary from the
# checked-in seed corpus until it finds the fault or SECONDS pass, and print a
# Markdown table of runs (and seconds) to find, "-" where it did not.
#
#   fuzz/matrix.sh BINARY [SECONDS] [SEEDS]
#
# BINARY: e.g. fuzz/target/x86_64-unknown-linux-gnu/release/flows (after
# `cargo fuzz build -s none --no-trace-compares flows`). SECONDS: the bound per
# run (default 60). SEEDS: libFuzzer seeds (default "1 2 3 4 5").
# FLOWS_OPTS (environment): libFuzzer options for every run (default the
# ones ci/fuzz.sh uses: -len_control=100 -entropic=0). FLOWS_SEEDS: the seed
# corpus directory (default fuzz/corpus/flows; a directory holding only
# `P1 register`, the bytes 0 0 0, shows the search from nothing).
# FLOWS_FAULTS: the faults, space-separated, instead of the scenarios' (with
# CHAPERONE_FUZZ_BINDING=bindings/clinic-fhir.toml: the FHIR-only ones).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || ! -x "$1" ]]; then
    echo "usage: fuzz/matrix.sh BINARY [SECONDS] [SEEDS] (BINARY: a built flows fuzz target)" >&2
    exit 2
fi
binary="$1"
seconds="${2:-60}"
read -r -a seeds <<<"${3:-1 2 3 4 5}"
read -r -a opts <<<"${FLOWS_OPTS--len_control=100 -entropic=0}"
corpus="${FLOWS_SEEDS:-fuzz/corpus/flows}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

read -r -a faults <<<"${FLOWS_FAULTS:-}"
[[ ${#faults[@]} -gt 0 ]] || for file in scenarios/*.toml; do
    grep -q ' & ' "$file" && continue
    line="$(grep -E '^faults = \[".+"\]' "$file" || true)"
    [[ -n "$line" ]] || continue
    faults+=("$(sed -E 's/^faults = \["([^"]+)".*/\1/' <<<"$line")")
done

header="| fault |"
rule="| --- |"
for seed in "${seeds[@]}"; do header+=" seed $seed |"; rule+=" --- |"; done
echo "$header"
echo "$rule"
for fault in "${faults[@]}"; do
    row="| \`$fault\` |"
    for seed in "${seeds[@]}"; do
        rm -rf "$work/corpus" "$work/artifacts"
        mkdir -p "$work/corpus" "$work/artifacts"
        started=$(date +%s.%N)
        set +e
        CHAPERONE_FUZZ_FAULTS="$fault" "$binary" "$work/corpus" "$corpus" \
            -seed="$seed" -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" \
            "${opts[@]}" >"$work/log" 2>&1
        set -e
        took=$(echo "$(date +%s.%N) - $started" | bc)
        if grep -q 'privacy violation' "$work/log"; then
            runs="$(grep -Eo '^#[0-9]+' "$work/log" | tail -n 1 | tr -d '#' || true)"
            row+=" ${runs:-seeds} ($(printf '%.1f' "$took") s) |"
        else
            row+=" - |"
        fi
    done
    echo "$row"
done
