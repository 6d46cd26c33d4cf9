#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interleaved rounds of the Node.js benchmarks; prints each JSON line, then
# the median with min-max of every configuration. Run it on a quiet machine:
# with other work on the cores the timer lag mostly measures waits for a CPU
# (the "less CPU waits" column takes those out). Each int32 configuration of
# the addon is also given as a ratio to the seed's with the same ring, and
# each bytes configuration as a ratio to postMessage. The 8-slot rings move
# 500,000 items (the seed's is slow there), the writers of Int32Array
# chunks 20,000,000 (they are fast); rates are per item either way.
#   bench/node/run.sh [ROUNDS] [all|int32]      (default 5 all)
# Needs the package built: (cd bindings/node && npm install).
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
set=${2:-all}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

configs=(
	"int32.js --impl seed --capacity 8 --items 500000"
	"int32.js --impl addon --capacity 8 --items 500000"
	"int32.js --impl seed --capacity 262144"
	"int32.js --impl addon --capacity 262144"
	"int32.js --impl addon --writer batch --capacity 262144 --items 20000000"
	"int32.js --impl addon --writer batch --reader batch --capacity 262144 --items 20000000"
)
if [[ $set == all ]]; then
	configs+=("bytes.js --impl postmessage" "bytes.js --impl addon" "bytes.js --impl reserve")
fi
for ((r = 1; r <= rounds; r++)); do
	for c in "${configs[@]}"; do
		# shellcheck disable=SC2086
		line=$(node $c)
		echo "$line"
		echo "$c|$line" >>"$out"
	done
done

node - "$out" <<'JS'
const fs = require('node:fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => {
  const i = l.indexOf('|');
  return { config: l.slice(0, i), r: JSON.parse(l.slice(i + 1)) };
});
const by = new Map();
for (const { config, r } of rows) {
  if (!by.has(config)) by.set(config, []);
  by.get(config).push(r);
}
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (a, d) => `${med(a).toFixed(d)} (${Math.min(...a).toFixed(d)}-${Math.max(...a).toFixed(d)})`;
console.log(`\nmedian (min-max) over ${rows.length / by.size} rounds`);
for (const [config, rs] of by) {
  const rate = rs[0].bench === 'int32' ? 'mitems_per_s' : 'gbytes_per_s';
  const unit = rs[0].bench === 'int32' ? 'M items/s' : 'GB/s';
  console.log(`${config.padEnd(80)} ${fmt(rs.map((r) => r[rate]), 3)} ${unit}, ` +
    `timer lag ${fmt(rs.map((r) => r.max_timer_lag_ms), 1)} ms, ` +
    `less CPU waits ${fmt(rs.map((r) => r.max_timer_lag_less_cpu_wait_ms), 1)} ms`);
}
// Ratios of medians, the addon against the seed with the same ring.
for (const [config, rs] of by) {
  if (rs[0].bench !== 'int32' || rs[0].impl !== 'addon') continue;
  const seed = [...by].find(([, s]) => s[0].bench === 'int32' && s[0].impl === 'seed' && s[0].capacity === rs[0].capacity);
  if (!seed) continue;
  const ratio = med(rs.map((r) => r.mitems_per_s)) / med(seed[1].map((r) => r.mitems_per_s));
  console.log(`${config.padEnd(80)} ${ratio.toFixed(2)}x the seed`);
}
const pm = [...by].find(([, s]) => s[0].bench === 'bytes64k' && s[0].impl === 'postmessage');
for (const [config, rs] of by) {
  if (!pm || rs[0].bench !== 'bytes64k' || rs === pm[1]) continue;
  const ratio = med(rs.map((r) => r.gbytes_per_s)) / med(pm[1].map((r) => r.gbytes_per_s));
  console.log(`${config.padEnd(80)} ${ratio.toFixed(2)}x postMessage`);
}
JS
