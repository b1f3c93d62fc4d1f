#!/usr/bin/env bash
# The whole test suite with one core saturated (issue #12): a CPU hog runs beside `npm test`'s
# vitest run, so every bounded wait, watchdog and timeout is checked on a busy machine. The hog is
# ended on exit, whatever happens. Usage: npm run test:stress [-- HOGS] (default: 1 hog).
set -euo pipefail
cd "$(dirname "$0")/.."

hogs=${1:-1}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 "$hogs"); do
  node -e 'for (;;) {}' &
  pids+=("$!")
done
echo "stress: ${#pids[@]} CPU hog(s) running (pid ${pids[*]}) beside npm test"

start=$(date +%s)
status=0
npm test || status=$?
echo "stress: npm test exited with $status after $(( $(date +%s) - start )) s, with ${#pids[@]} CPU hog(s) beside it"
exit "$status"
