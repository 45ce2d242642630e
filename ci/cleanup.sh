#!/usr/bin/env bash
# Remove what a killed chaperone run left behind: every container and network
# labelled dev.chaperone.run (all runs, or only RUN_ID's). A run that ends
# normally, fails, or is interrupted with Ctrl-C/SIGTERM removes its own;
# this is for SIGKILL, an OOM kill or a lost CI runner.
#
#   ci/cleanup.sh            # every chaperone run's leftovers
#   ci/cleanup.sh RUN_ID     # one run's (the id `chaperone` prints at start)
set -euo pipefail
filter="label=dev.chaperone.run"
if [[ -n "${1:-}" ]]; then
  filter="label=dev.chaperone.run=$1"
fi
containers=$(docker ps -aq --filter "$filter")
if [[ -n "$containers" ]]; then
  # shellcheck disable=SC2086
  docker rm -f $containers >/dev/null
fi
networks=$(docker network ls -q --filter "$filter")
if [[ -n "$networks" ]]; then
  # shellcheck disable=SC2086
  docker network rm $networks >/dev/null
fi
echo "removed $(echo -n "$containers" | grep -c . || true) container(s), $(echo -n "$networks" | grep -c . || true) network(s)"
