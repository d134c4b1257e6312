#!/usr/bin/env bash
# A peer beside us, in the same minutes: graphile-worker 0.18 (Node.js) runs the issue's
# workloads (benchmarks/peers/graphile-worker/bench.mjs), and right after each of its runs our
# harness (benchmarks/run.sh) runs the same workload once, round after round. The targets of the
# issue were set from peers' figures measured on another day, and this machine's speed varies
# by the hour (BENCHMARKS.md), so a figure of ours is best read beside a peer's of the same hour.
#
#   benchmarks/peers.sh                                  every workload, 3 rounds, lean layout
#   benchmarks/peers.sh --workloads W3-best,W4 --rounds 2 --layout compatible
#   benchmarks/peers.sh --quick --rounds 1               small sizes (smoke test)
#
# Options: --workloads LIST (W1-1, W2, W3-default, W3-best, W4; default all five); --rounds N
# (default 3); --layout lean|compatible (ours; default lean); --quick (W1 2,000, W2 and W3
# 10,000, W4 200); --graphile-best "CONCURRENCY LOCAL_QUEUE_SIZE COMPLETE_BATCH_DELAY_MS"
# (graphile-worker's best options, default "50 2000 0": a local queue of 2,000 jobs and
# completions batched, the settings of its fastest drain here).
# graphile-worker's W3 default is concurrency 10 with its default options; its W4 worker is a
# process of its own at concurrency 10, as ours is. Needs node and npm (npm ci installs the
# pinned graphile-worker into benchmarks/peers/graphile-worker/node_modules the first time).
# Database: PROCRASTINATE_BENCH_DATABASE_URL when set, otherwise this checkout's private cluster
# (scripts/postgres.sh); graphile-worker gets a fresh database peer_graphile for each run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

workloads="W1-1,W2,W3-default,W3-best,W4" rounds=3 layout=lean quick=false graphile_best="50 2000 0"
while [ $# -gt 0 ]; do
  case "$1" in
    --workloads) workloads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --layout) layout=$2; shift 2 ;;
    --quick) quick=true; shift ;;
    --graphile-best) graphile_best=$2; shift 2 ;;
    *) echo "peers.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
say() { echo "peers.sh: $*" >&2; }

command -v node >/dev/null && command -v npm >/dev/null || { say "needs node and npm (apt-get install -y nodejs npm)"; exit 1; }
peer=benchmarks/peers/graphile-worker
if [ ! -d "$peer/node_modules/graphile-worker" ]; then
  say "installing graphile-worker (npm ci)"
  (cd "$peer" && npm ci --no-audit --no-fund >&2)
fi
server=${PROCRASTINATE_BENCH_DATABASE_URL:-$(scripts/postgres.sh)}
peer_url=$(printf '%s' "$server" | sed -E 's#^(postgres(ql)?://[^/]*)/[^?]*#\1/peer_graphile#')
out=$(mktemp -d)
trap 'rm -rf "$out"; psql "$server" -q -c "DROP DATABASE IF EXISTS peer_graphile (FORCE)" >/dev/null 2>&1 || true' EXIT

if $quick; then w1=2000 w2=10000 w3=10000 w4=200 warm=20; ours_size=(--quick); else w1=20000 w2=100000 w3=100000 w4=2000 warm=50; ours_size=(); fi

graphile() { # workload → one JSON line
  # Without PostgreSQL's JIT, as our connector sets for its own sessions (graphile-worker's
  # claim is costed high enough to be JIT-compiled otherwise: 10-15 % slower drains here).
  psql "$server" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS peer_graphile (FORCE)" -c "CREATE DATABASE peer_graphile" \
    -c "ALTER DATABASE peer_graphile SET jit = off" >/dev/null 2>&1
  case "$1" in
    W1-1) node "$peer/bench.mjs" w1 "$peer_url" "$w1" ;;
    W2) node "$peer/bench.mjs" w2 "$peer_url" "$w2" ;;
    W3-default) node "$peer/bench.mjs" w3 "$peer_url" "$w3" 10 ;;
    # shellcheck disable=SC2086 # three numbers
    W3-best) node "$peer/bench.mjs" w3 "$peer_url" "$w3" $graphile_best ;;
    W4) node "$peer/bench.mjs" w4 "$peer_url" "$w4" 20 "$warm" ;;
    *) say "unknown workload $1 (W1-1, W2, W3-default, W3-best, W4)"; exit 2 ;;
  esac
}
figure_of_graphile() { # workload json → the figure
  node -e '
    const [w, json] = process.argv.slice(1); const r = JSON.parse(json);
    console.log(w === "W4" ? `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} ms` : `${Math.round(r.jobsPerSecond).toLocaleString("en-US")} jobs/s`);' "$1" "$2"
}
figure_of_ours() { # workload file → the figure
  node -e '
    const [w, file] = process.argv.slice(1); const d = JSON.parse(require("fs").readFileSync(file, "utf8"));
    const m = d.workloads.find((x) => x.id === w)?.median;
    if (!m) { console.log("failed"); process.exit(0); }
    console.log(w === "W4" ? `${m.latencyP50Ms.toFixed(2)} / ${m.latencyP99Ms.toFixed(2)} ms` : `${Math.round(m.jobsPerSecond).toLocaleString("en-US")} jobs/s`);' "$1" "$2"
}

echo "graphile-worker 0.18.0 (node $(node --version)) and Procrastinate for .NET ($layout layout, commit $(git rev-parse --short HEAD)), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| Round | Workload | graphile-worker | Procrastinate for .NET |"
echo "|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  for w in ${workloads//,/ }; do
    g=$(graphile "$w" | tail -n 1)
    printf '%s\n' "$g" >>"$out/graphile.jsonl"
    benchmarks/run.sh --layout "$layout" --workloads "$w" --runs 1 "${ours_size[@]}" --quiet-timeout 30 \
      --json "$out/ours-$w-$round.json" >"$out/ours-$w-$round.log" 2>&1 || say "our $w run $round failed: see its log"
    echo "| $round | $w | $(figure_of_graphile "$w" "$g") | $(figure_of_ours "$w" "$out/ours-$w-$round.json" 2>/dev/null || echo failed) |"
  done
done
echo
echo "graphile-worker's runs (JSON):"
sed 's/^/    /' "$out/graphile.jsonl"
