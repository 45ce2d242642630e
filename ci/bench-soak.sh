#!/usr/bin/env bash
# Soak benchmark: one run, one machine. Measures, and prints as a Markdown table:
#   1. the soak's throughput on a read-heavy mix against the embedded clean clinic;
#   2. the same soak against a standalone clean clinic (`clinic serve`), and
#   3. the ceiling `wrk` reaches on that clinic's busiest read endpoint,
#      GET /v1/me/recordings with a patient's token (the same code path);
#   4. the harness's peak memory (RSS) at 1,000 and 10,000 patients.
# It is a benchmark, not a test: it asserts nothing and no CI step runs it.
#
# Usage: ci/bench-soak.sh [SECONDS]     (default 20 s per throughput run)
# Needs: cargo, curl, jq, wrk (`apt-get install -y wrk curl jq`).
# Knobs: BENCH_PATIENTS (default 100) for the throughput runs;
#        BENCH_PORT (default 18080) for the standalone clinic.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
patients="${BENCH_PATIENTS:-100}"
port="${BENCH_PORT:-18080}"
out="$(mktemp -d)"
for tool in curl jq wrk; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install -y $tool)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --locked -q -p chaperone -p clinic
bin="${CARGO_TARGET_DIR:-target}/release"

clinic_pid=""
cleanup() { [ -n "$clinic_pid" ] && kill "$clinic_pid" 2>/dev/null || true; }
trap cleanup EXIT

field() { jq -r "$1" "$2"; }
soak() { # name, then soak arguments; prints nothing, leaves $out/$name/report.json
  local name="$1"; shift
  "$bin/chaperone" soak --seed 1 --quiet --report "$out/$name" "$@" >"$out/$name.log" 2>&1 || true
}

# 1. Soak, read-heavy, embedded clean clinic.
soak embedded --mix read-heavy --patients "$patients" --duration "${seconds}s"

# 2 and 3. A standalone clean clinic for the soak and for wrk.
"$bin/clinic" serve --api-listen "127.0.0.1:$port" >"$out/clinic.log" 2>&1 &
clinic_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
soak url --target "$base" --mix read-heavy --patients "$patients" --duration "${seconds}s"

# A patient with three recordings, so the history page wrk reads is not empty.
token=$(curl -fsS -X POST "$base/v1/patients" -H 'content-type: application/json' \
  -d '{"display_name":"bench"}' | jq -r .token)
auth="authorization: Bearer $token"
for hour in 09 10 11; do
  appointment=$(curl -fsS -X POST "$base/v1/appointments" -H "$auth" -H 'content-type: application/json' \
    -d "{\"slot\":\"d1-${hour}h\",\"notes\":\"bench\"}" | jq -r .appointment_id)
  call=$(curl -fsS -X POST "$base/v1/appointments/$appointment/call" -H "$auth" | jq -r .call_id)
  curl -fsS -X POST "$base/v1/calls/$call/end" -H "$auth" >/dev/null
done
wrk -t2 -c"$patients" -d"${seconds}s" -H "$auth" "$base/v1/me/recordings?page=1&per_page=10" >"$out/wrk.txt"
wrk_rps=$(awk '/^Requests\/sec/ {print $2}' "$out/wrk.txt")
wrk_p99=$(wrk -t2 -c"$patients" -d5s --latency -H "$auth" "$base/v1/me/recordings?page=1&per_page=10" \
  | awk '/ 99%/ {print $2}')
kill "$clinic_pid"; wait "$clinic_pid" 2>/dev/null || true; clinic_pid=""
unset token auth

# 4. Harness memory at 1,000 and 10,000 patients (balanced mix, embedded; the
#    RSS includes the embedded clinic, so it is an upper bound for the harness).
#    The rate is capped so that the clinic, not the harness, is never the
#    bottleneck: 10,000 unpaced patients on two cores queue past the 15 s
#    request timeout, and the run would measure timeouts rather than memory.
soak rss1k --patients 1000 --duration 30s --rate 1000
soak rss10k --patients 10000 --duration 60s --rate 1000

rate() { printf '%.0f' "$(field .ops_per_s "$out/$1/report.json")"; }
mib() { awk -v k="$(field .peak_rss_kib "$out/$1/report.json")" 'BEGIN { printf "%.0f", k / 1024 }'; }
cpus=$(nproc)
echo
echo "Soak benchmark, $(date -u +%Y-%m-%d), $cpus CPU(s), ${seconds} s per throughput run, $patients patients"
echo
echo "| measurement | figure |"
echo "| --- | ---: |"
echo "| soak, read-heavy mix, embedded clean clinic | $(rate embedded) ops/s (verdict $(field .verdict "$out/embedded/report.json")) |"
echo "| soak, read-heavy mix, standalone clean clinic | $(rate url) ops/s (verdict $(field .verdict "$out/url/report.json")) |"
echo "| wrk ceiling, GET /v1/me/recordings, same standalone clinic, $patients connections | $(printf '%.0f' "$wrk_rps") req/s (p99 $wrk_p99) |"
echo "| harness peak RSS, 1,000 patients ($(field .ops "$out/rss1k/report.json") ops, verdict $(field .verdict "$out/rss1k/report.json")) | $(mib rss1k) MiB |"
echo "| harness peak RSS, 10,000 patients ($(field .ops "$out/rss10k/report.json") ops, verdict $(field .verdict "$out/rss10k/report.json")) | $(mib rss10k) MiB |"
echo
echo "(reports and logs in $out)"
