#!/usr/bin/env bash
# bench-tracker.sh — the headless tracker's CPU % and RSS while it tracks work.
#
# Starts a real powdo-relay and powdo-dvm (20-second segments, one screenshot each) on
# 127.0.0.1, an Xvfb display with xdotool playing a worker, joins, then runs
# `powdo-tracker run` for BENCH_SECONDS and samples /proc/<pid>/stat and
# /proc/<pid>/status once a second. Prints one summary line per figure.
#
#   scripts/bench-tracker.sh                 # binaries from $POWDO_BIN, else built into a temp dir
#   BENCH_SECONDS=120 scripts/bench-tracker.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
secs=${BENCH_SECONDS:-60}
work=$(mktemp -d /tmp/powdo-bench-tracker.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bin=${POWDO_BIN:-}
if [[ -z "$bin" || ! -x "$bin/powdo-tracker" || ! -x "$bin/powdo-relay" || ! -x "$bin/powdo-dvm" ]]; then
	bin=$work/bin
	mkdir -p "$bin"
	echo "building binaries into $bin" >&2
	(cd "$root/relay" && go build -o "$bin/powdo-relay" ./cmd/powdo-relay)
	(cd "$root/dvm" && go build -o "$bin/powdo-dvm" ./cmd/powdo-dvm)
	(cd "$root" && go build -o "$bin/powdo-tracker" ./app/cmd/powdo-tracker)
fi

# X display with a worker moving the mouse and typing.
exec 3> >(cat >"$work/display")
Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 2>"$work/xvfb.log" &
pids+=($!)
exec 3>&-
for _ in $(seq 100); do [[ -s "$work/display" ]] && break; sleep 0.1; done
export DISPLAY=":$(tr -d '\n' <"$work/display")"
(for i in $(seq 100000); do xdotool mousemove $((100 + i % 300)) $((100 + i % 200)) key shift 2>/dev/null || exit 0; sleep 1; done) &
pids+=($!)

dvm_pk=$("$bin/powdo-dvm" keygen --out "$work/dvm.key" | awk '/^pubkey /{print $2}')
"$bin/powdo-relay" serve --listen 127.0.0.1:0 --addr-file "$work/addr" --data-dir "$work/relay" \
	--admin "$dvm_pk" --allow "$dvm_pk" --events-per-minute-pubkey -1 --events-per-minute-ip -1 \
	--uploads-per-minute-pubkey -1 --uploads-per-minute-ip -1 --manage-per-minute-ip -1 \
	>"$work/relay.out" 2>"$work/relay.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/addr" ]] && break; sleep 0.1; done
addr=$(tr -d '\n' <"$work/addr")
cat >"$work/dvm.json" <<EOF
{"data_dir": "$work/dvm", "key_file": "$work/dvm.key", "relays": ["ws://$addr"], "listen": "off",
 "policy": {"segment_seconds": 20, "screenshots": 1, "blur": false, "review_seconds": 2, "idle_seconds": 300, "jpeg_quality": 80, "max_width": 1920},
 "projects": [{"id": 1, "name": "Bench", "customer": "pow.do"}], "activities": [{"id": 1, "name": "Work"}]}
EOF
link=$("$bin/powdo-dvm" invite --config "$work/dvm.json" --name Bench --no-qr 2>"$work/invite.log" | grep '^powdo://')
"$bin/powdo-dvm" run --config "$work/dvm.json" >"$work/dvm.out" 2>"$work/dvm.log" &
pids+=($!)

export POWDO_DATA_DIR=$work/tracker POWDO_PASSPHRASE="bench passphrase"
"$bin/powdo-tracker" join "$link" >"$work/join.out" 2>"$work/join.log"
"$bin/powdo-tracker" run --project 1 --activity 1 --duration "${secs}s" --status-every 10s --drain 60s \
	>"$work/run.out" 2>"$work/run.log" &
tracker=$!
pids+=("$tracker")

tck=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
samples=0 cpu_sum=0 cpu_max=0 rss_sum=0 rss_max=0
prev_t=$(ticks "$tracker") prev_ns=$(date +%s%N)
sleep 1
while kill -0 "$tracker" 2>/dev/null && ! grep -q '^stopped' "$work/run.out" 2>/dev/null; do
	t=$(ticks "$tracker" 2>/dev/null) || break
	ns=$(date +%s%N)
	r=$(rss_kib "$tracker" 2>/dev/null) || break
	cpu=$(awk -v dt=$((t - prev_t)) -v dns=$((ns - prev_ns)) -v hz="$tck" 'BEGIN{printf "%.2f", 100 * dt / hz / (dns / 1e9)}')
	samples=$((samples + 1))
	cpu_sum=$(awk -v a="$cpu_sum" -v b="$cpu" 'BEGIN{print a + b}')
	cpu_max=$(awk -v a="$cpu_max" -v b="$cpu" 'BEGIN{print (b > a) ? b : a}')
	rss_sum=$((rss_sum + r))
	((r > rss_max)) && rss_max=$r
	prev_t=$t prev_ns=$ns
	sleep 1
done
wait "$tracker" || { echo "powdo-tracker failed:" >&2; tail -20 "$work/run.log" >&2; exit 1; }

segments=$(grep -c ' state=accepted ' "$work/run.out" || true)
echo "tracker samples=$samples seconds=$secs segment_seconds=20 segments_accepted=$segments"
awk -v s="$cpu_sum" -v n="$samples" -v m="$cpu_max" 'BEGIN{printf "tracker cpu_percent avg=%.2f max=%.2f (of one core)\n", s / n, m}'
awk -v s="$rss_sum" -v n="$samples" -v m="$rss_max" 'BEGIN{printf "tracker rss_mib avg=%.1f max=%.1f\n", s / n / 1024, m / 1024}'
grep '^done ' "$work/run.out" || true
