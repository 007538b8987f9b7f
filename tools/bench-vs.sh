#!/usr/bin/env bash
# A criterion bench of this checkout against an earlier commit, side by side in one run:
#   tools/bench-vs.sh REV BENCH [FILTER]    e.g.  tools/bench-vs.sh HEAD~1 kernels mc-option/european
# builds BENCH of helix-math at REV (in a worktree under target/bench-vs) and of this checkout,
# with the same compiler, then runs the two binaries alternately ROUNDS times (default 5) and
# prints, per benchmark, the time an iteration at REV and here (minimum and median over the
# rounds) and their ratio, REV over here: above 1 is faster here.
# Timings depend on the machine and its load; only the ratios of one run are comparable.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: tools/bench-vs.sh REV BENCH [FILTER]}
BENCH=${2:?usage: tools/bench-vs.sh REV BENCH [FILTER]}
FILTER=${3:-}
ROUNDS=${ROUNDS:-5}
ROOT=$PWD
BASE=$ROOT/target/bench-vs/tree
OUT=$ROOT/target/bench-vs/runs
TOOLCHAIN=$(rustc --version | awk '{print $2}')
rm -rf "$OUT" && mkdir -p "$OUT"
git worktree remove --force "$BASE" 2>/dev/null || rm -rf "$BASE"
git worktree add --detach "$BASE" "$REV" >/dev/null
trap 'git worktree remove --force "$BASE"' EXIT

# The bench executable cargo builds for a checkout ($1) into a target folder ($2).
bench_binary() {
  (cd "$1" && cargo "+$TOOLCHAIN" bench -p helix-math --bench "$BENCH" --no-run --message-format=json \
    --target-dir "$2" 2>/dev/null) |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["bench"]:
        print(m["executable"])'
}
OLD=$(bench_binary "$BASE" "$ROOT/target/bench-vs/target")
NEW=$(bench_binary "$ROOT" "${CARGO_TARGET_DIR:-$ROOT/target}")
for round in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    bin=$OLD; [ "$side" = new ] && bin=$NEW
    "$bin" --bench --output-format bencher --warm-up-time 1 --measurement-time 3 $FILTER \
      > "$OUT/$side-$round.txt" 2>/dev/null
  done
  echo "round $round of $ROUNDS done" >&2
done
python3 - "$OUT" "$ROUNDS" "$REV" <<'EOF'
import re, statistics, sys
out, rounds, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = {}
for side in ("old", "new"):
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{side}-{r}.txt"):
            m = re.match(r"test (\S+) \.\.\. bench:\s+([\d,]+) ns/iter", line)
            if m:
                times.setdefault(m[1], {}).setdefault(side, []).append(int(m[2].replace(",", "")))
print(f"{'benchmark':50} {rev + ' min/median':>24} {'here min/median':>24}  ratio min/median")
for name, t in times.items():
    if len(t) < 2:
        continue
    (o_min, o_med), (n_min, n_med) = [(min(t[s]), statistics.median(t[s])) for s in ("old", "new")]
    ms = lambda a, b: f"{a / 1e6:.3f} / {b / 1e6:.3f} ms"
    print(f"{name:50} {ms(o_min, o_med):>24} {ms(n_min, n_med):>24}  {o_min / n_min:.2f} / {o_med / n_med:.2f}")
EOF
