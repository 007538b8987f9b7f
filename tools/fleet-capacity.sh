#!/usr/bin/env bash
# Capacity through nginx: a fleet of one replica with one CPU permit against a fleet of two, in
# one run, alternated ROUNDS times (default 2), the same mix (host/mixes/fleet.toml) and seed.
# Prints each sweep's capacity C; the full sweeps are in $OUT (default /tmp/helix-fleet-capacity).
# Timings depend on the machine and its load: compare the two fleets within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-/tmp/helix-fleet-capacity}
cargo xtask kernels >/dev/null
cargo build --release --package helix-host --bin helix
BIN=target/release/helix
export HELIX_NGINX=${HELIX_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
export HELIX_MANIFESTS=$PWD/manifests
mkdir -p "$OUT"
printf 'summary_interval_s = 0\n[router]\ncpu_permits = 1\n' > "$OUT/one-permit.toml"
for round in $(seq 1 "$ROUNDS"); do
  for n in 1 2; do
    port=$((18100 + n))
    rm -rf "$OUT/run-$n"
    "$BIN" fleet --replicas "$n" --listen "127.0.0.1:$port" --config "$OUT/one-permit.toml" \
      --run-dir "$OUT/run-$n" > "$OUT/fleet-$n-$round.log" 2>&1 &
    fleet=$!
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.3; done
    "$BIN" load --sweep --target "http://127.0.0.1:$port" --mix host/mixes/fleet.toml --start-rate 5 \
      --max-rate 500 --duration 6 --probe-duration 4 --warmup 2 --seed 5 \
      --json "$OUT/sweep-$n-$round.json" > "$OUT/sweep-$n-$round.txt" 2>&1
    echo "round $round, $n replica(s): $(grep -m1 'capacity C =' "$OUT/sweep-$n-$round.txt")"
    kill -INT "$fleet"
    wait "$fleet"
  done
done
