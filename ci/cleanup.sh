#!/usr/bin/env bash
# Remove what a killed chaperone run left behind: the containers and networks
# of one CI job or one run. A run that ends normally, fails, or is
# interrupted with Ctrl-C/SIGTERM removes its own; this is for SIGKILL, an
# OOM kill or a lost CI runner.
#
#   ci/cleanup.sh JOB_OR_RUN_ID   # one job's (CHAPERONE_RUN_ID) or one run's
#                                 # (the run id `chaperone` prints at start)
#   ci/cleanup.sh --all           # every chaperone run's leftovers on this host
#
# Without an argument it refuses (exit 2): on a Docker host shared by
# parallel CI jobs, removing every run would kill the other jobs' targets.
set -euo pipefail
case "${1:-}" in
  "")
    echo "error: ci/cleanup.sh needs a job or run id (CHAPERONE_RUN_ID, or the run id chaperone printed), or --all" >&2
    exit 2
    ;;
  --all)
    filters=("label=dev.chaperone.run")
    ;;
  *)
    if [[ ! "$1" =~ ^[A-Za-z0-9_.-]{1,64}$ ]]; then
      echo "error: not a job or run id: it must be 1 to 64 characters of A-Z a-z 0-9 _ . -" >&2
      exit 2
    fi
    filters=("label=dev.chaperone.job=$1" "label=dev.chaperone.run=$1")
    ;;
esac
# What is left of this job or run, one id per line.
leftovers() {
  for filter in "${filters[@]}"; do
    docker ps -aq --filter "$filter" || true
  done | sort -u
}
leftover_networks() {
  for filter in "${filters[@]}"; do
    docker network ls -q --filter "$filter" || true
  done | sort -u
}
containers=$(leftovers)
networks=$(leftover_networks)
# The run being cleaned up may be removing the same things as it ends (its
# target gone, it shuts down): one already gone is not an error, and what is
# still there is removed again (a network cannot go before its containers).
for _ in $(seq 20); do
  left_containers=$(leftovers)
  left_networks=$(leftover_networks)
  [[ -z "$left_containers$left_networks" ]] && break
  for container in $left_containers; do
    docker rm -f "$container" >/dev/null 2>&1 || true
  done
  for network in $left_networks; do
    docker network rm "$network" >/dev/null 2>&1 || true
  done
  sleep 0.5
done
if [[ -n "$(leftovers)$(leftover_networks)" ]]; then
  echo "error: some containers or networks could not be removed; see docker ps -a --filter ${filters[0]}" >&2
  exit 1
fi
echo "removed $(echo -n "$containers" | grep -c . || true) container(s), $(echo -n "$networks" | grep -c . || true) network(s)"
