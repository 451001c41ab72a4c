#!/usr/bin/env bash
# `make demo`: a whole pow.do installation on this machine, on 127.0.0.1 only.
#
# Starts powdo-relay (relay + Blossom), the Kimai emulator and the DVM with their data
# under ./demo-data/, creates an invite and joins a tracker: the desktop window when
# $DISPLAY is set, otherwise the headless powdo-tracker (on a private Xvfb when one is
# installed, so it has a screen to capture). Then it prints what to open. Ctrl-C stops
# everything. Running it again reuses ./demo-data/; DEMO_RESET=1 starts from scratch.
#
# Environment: DEMO_RESET=1, DEMO_DIR (default ./demo-data), DEMO_RELAY_PORT (3334),
# DEMO_DVM_PORT (8089), DEMO_KIMAI_PORT (8001), DEMO_SEGMENT_SECONDS (60),
# DEMO_REVIEW_SECONDS (30), DEMO_HEADLESS=1 (headless tracker even with a display).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${POWDO_BIN:-$ROOT/bin}"
DATA="${DEMO_DIR:-$ROOT/demo-data}"
LOGS="$DATA/logs"
RELAY_PORT="${DEMO_RELAY_PORT:-3334}"
DVM_PORT="${DEMO_DVM_PORT:-8089}"
KIMAI_PORT="${DEMO_KIMAI_PORT:-8001}"
SEGMENT_SECONDS="${DEMO_SEGMENT_SECONDS:-60}"
REVIEW_SECONDS="${DEMO_REVIEW_SECONDS:-30}"
RELAY_URL="ws://127.0.0.1:$RELAY_PORT"
BLOSSOM_URL="http://127.0.0.1:$RELAY_PORT"
DVM_URL="http://127.0.0.1:$DVM_PORT"
KIMAI_URL="http://127.0.0.1:$KIMAI_PORT"
KIMAI_ADMIN_TOKEN="demo-admin-token" # the emulator's built-in demo accounts
KIMAI_DVM_TOKEN="demo-dvm-token"
KIMAI_WORKER_ID=3                    # "alice" in the emulator's demo seed
PROJECT_ID=1 ACTIVITY_ID=1           # "Website" / "Development" in the demo seed

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mdemo: %s\033[0m\n' "$*" >&2; exit 1; }

for b in powdo-relay powdo-dvm powdo-tracker; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run \`make demo\` (it builds first) or \`make build\`"
done
command -v curl >/dev/null || die "curl is needed to wait for the services: apt-get install curl"

# --- demo data: reuse or reset -----------------------------------------------------------
if [ "${DEMO_RESET:-}" = 1 ] && [ -d "$DATA" ]; then
  case "$(basename "$DATA")" in
    demo-data*) ;;
    *) die "DEMO_RESET=1 only removes a directory named demo-data*, not $DATA" ;;
  esac
  say "DEMO_RESET=1: removing $DATA"
  rm -rf -- "$DATA"
fi
if [ -f "$DATA/dvm/dvm-key" ]; then
  say "reusing the demo data in $DATA (DEMO_RESET=1 make demo starts over)"
  FRESH=0
else
  say "creating the demo data in $DATA"
  FRESH=1
fi
umask 077
mkdir -p "$DATA/relay" "$DATA/dvm" "$DATA/kimai" "$LOGS"

# --- ports must be free -------------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "RELAY:$RELAY_PORT" "DVM:$DVM_PORT" "KIMAI:$KIMAI_PORT"; do
  if port_busy "${p#*:}"; then
    die "port ${p#*:} on 127.0.0.1 is in use (another demo still running?); stop it or set DEMO_${p%%:*}_PORT"
  fi
done

# --- process management: every child in its own session, stopped in order on exit --------
declare -a PIDS=() NAMES=()
XVFB_PID=""
start() { # start NAME LOGFILE CMD...: run in the background, output to LOGFILE
  local name="$1" log="$2"; shift 2
  printf '\n===== %s started %s: %s\n' "$name" "$(date -u +%FT%TZ)" "$*" >>"$log"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  PIDS+=("$!"); NAMES+=("$name")
}
stop_pid() { # stop_pid PID NAME GRACE_SECONDS: SIGTERM, wait, then SIGKILL
  local pid="$1" name="$2" grace="$3" i
  kill -0 "$pid" 2>/dev/null || return 0
  # Each child leads its own process group (setsid): signal the whole group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  say "$name did not stop within ${grace}s: killing it"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
STOPPING=0
cleanup() {
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  trap - INT TERM
  echo
  say "stopping (logs stay in $LOGS)"
  local i
  # Reverse order: tracker and log tail first (the tracker closes its session), the relay last.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[$i]}" "${NAMES[$i]}" 40
  done
  if [ -n "$XVFB_PID" ]; then stop_pid "$XVFB_PID" "demo desktop" 10; fi
  say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # wait_http NAME URL LOG [curl args...]: poll until 200, or fail with the log
  local name="$1" url="$2" log="$3" pid="${PIDS[-1]}"; shift 3
  local i
  for ((i = 0; i < 300; i++)); do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "----- last lines of $log" >&2; tail -n 30 "$log" >&2
      die "$name exited during start-up (log: $log)"
    fi
    sleep 0.1
  done
  echo "----- last lines of $log" >&2; tail -n 30 "$log" >&2
  die "$name did not answer $url within 30 s (log: $log)"
}

# --- the DVM's key and the relay's admin configuration ------------------------------------
if [ ! -f "$DATA/dvm/dvm-key" ]; then
  "$BIN/powdo-dvm" keygen --out "$DATA/dvm/dvm-key" >"$DATA/dvm/keygen.txt"
  sed -n 's/^pubkey \([0-9a-f]\{64\}\)$/\1/p' "$DATA/dvm/keygen.txt" >"$DATA/dvm/dvm.pub"
fi
DVM_PUB="$(cat "$DATA/dvm/dvm.pub")"
[[ "$DVM_PUB" =~ ^[0-9a-f]{64}$ ]] || die "no DVM pubkey in $DATA/dvm/dvm.pub: rerun with DEMO_RESET=1"
chmod 600 "$DATA/dvm/dvm-key"

cat >"$DATA/relay.conf" <<EOF
# powdo-relay configuration for the demo (written by scripts/demo.sh)
listen = 127.0.0.1:$RELAY_PORT
data-dir = $DATA/relay
# The DVM administers the relay: it allows the workers it invites.
admin = $DVM_PUB
shutdown-timeout = 5s
EOF

printf '%s\n' "$KIMAI_DVM_TOKEN" >"$DATA/kimai-token"
cat >"$DATA/dvm.json" <<EOF
{
  "data_dir": "$DATA/dvm",
  "key_file": "$DATA/dvm/dvm-key",
  "relays": ["$RELAY_URL"],
  "listen": "127.0.0.1:$DVM_PORT",
  "kimai_url": "$KIMAI_URL",
  "kimai_token_file": "$DATA/kimai-token",
  "diary_url": "$DVM_URL",
  "policy": {"segment_seconds": $SEGMENT_SECONDS, "screenshots": 2, "blur": false, "review_seconds": $REVIEW_SECONDS,
             "idle_seconds": 300, "jpeg_quality": 80, "max_width": 1920},
  "reconnect_max": "10s",
  "retry_max": "30s"
}
EOF

# --- services ------------------------------------------------------------------------------
say "starting the Kimai emulator on $KIMAI_URL (a stand-in for Kimai, which cannot run here)"
start kimai "$LOGS/kimai.log" "$BIN/powdo-dvm" kimai-emulator --listen "127.0.0.1:$KIMAI_PORT" --state "$DATA/kimai/state.json"
wait_http "Kimai emulator" "$KIMAI_URL/api/ping" "$LOGS/kimai.log" -H "Authorization: Bearer $KIMAI_ADMIN_TOKEN"

say "starting powdo-relay on $RELAY_URL (Blossom on $BLOSSOM_URL)"
start relay "$LOGS/relay.log" "$BIN/powdo-relay" serve --config "$DATA/relay.conf"
wait_http powdo-relay "$BLOSSOM_URL/healthz" "$LOGS/relay.log"

REVIEWER=reviewer
if [ ! -f "$DATA/reviewer-password" ]; then
  openssl rand -base64 18 | tr -d '/+=\n' >"$DATA/reviewer-password.new"
  "$BIN/powdo-dvm" reviewer add "$REVIEWER" --data-dir "$DATA/dvm" <"$DATA/reviewer-password.new" >>"$LOGS/dvm.log" 2>&1 ||
    die "could not create the reviewer account (log: $LOGS/dvm.log)"
  mv "$DATA/reviewer-password.new" "$DATA/reviewer-password"
fi

say "starting the DVM (health and work diary on $DVM_URL)"
start dvm "$LOGS/dvm.log" "$BIN/powdo-dvm" run --config "$DATA/dvm.json"
wait_http powdo-dvm "$DVM_URL/healthz" "$LOGS/dvm.log"

# --- the tracker ---------------------------------------------------------------------------
invite() { # prints a fresh invite link for the demo worker
  "$BIN/powdo-dvm" invite --config "$DATA/dvm.json" --name "Demo Worker" --kimai-user "$KIMAI_WORKER_ID" --no-qr \
    2>>"$LOGS/dvm.log" | sed -n 's/^\(powdo:\/\/join?.*\)$/\1/p' | head -n 1
}

TRACKER_HOW=""
if [ -n "${DISPLAY:-}" ] && [ "${DEMO_HEADLESS:-}" != 1 ]; then
  DESKTOP_BIN="$ROOT/build/bin/pow.do"
  # Build the window when it is missing or older than its sources.
  if [ ! -x "$DESKTOP_BIN" ] || [ -n "$(cd "$ROOT" && find main.go engine.go app frontend/src frontend/index.html \
      -newer "$DESKTOP_BIN" -type f -print -quit 2>/dev/null)" ]; then
    WAILS="$(command -v wails || echo "$(go env GOPATH)/bin/wails")"
    [ -x "$WAILS" ] || die "\$DISPLAY is set but the Wails CLI is missing: run \`make setup\` (or DEMO_HEADLESS=1 make demo)"
    say "building the desktop tracker with \`wails build\` (when its sources changed; log: $LOGS/wails-build.log)"
    (cd "$ROOT" && "$WAILS" build -m >"$LOGS/wails-build.log" 2>&1) || die "wails build failed (log: $LOGS/wails-build.log)"
  fi
  mkdir -p "$DATA/desktop"
  LINK=""
  if [ ! -f "$DATA/desktop/config.json" ]; then
    LINK="$(invite)"
    [ -n "$LINK" ] || die "powdo-dvm invite printed no link (log: $LOGS/dvm.log)"
    printf '%s\n' "$LINK" >"$DATA/invite-link"
  fi
  say "opening the desktop tracker (data in $DATA/desktop)"
  start tracker "$LOGS/tracker.log" env POWDO_DATA_DIR="$DATA/desktop" "$DESKTOP_BIN" ${LINK:+"$LINK"}
  if [ -n "$LINK" ]; then
    TRACKER_HOW="the pow.do window: the invite is filled in; choose a passphrase, join, then pick
      project \"Website\" / activity \"Development\" and press Start. (The link is also in
      $DATA/invite-link.)"
  else
    TRACKER_HOW="the pow.do window (already joined): unlock it with your passphrase and press Start."
  fi
else
  TRACKER_DIR="$DATA/tracker"
  mkdir -p "$TRACKER_DIR"
  [ -f "$DATA/tracker-passphrase" ] || openssl rand -base64 18 >"$DATA/tracker-passphrase"
  if [ ! -f "$TRACKER_DIR/config.json" ]; then
    LINK="$(invite)"
    [ -n "$LINK" ] || die "powdo-dvm invite printed no link (log: $LOGS/dvm.log)"
    say "joining the headless tracker with a new invite"
    "$BIN/powdo-tracker" join "$LINK" --data-dir "$TRACKER_DIR" --passphrase-file "$DATA/tracker-passphrase" \
      >>"$LOGS/tracker.log" 2>&1 || { tail -n 20 "$LOGS/tracker.log" >&2; die "tracker join failed (log: $LOGS/tracker.log)"; }
    grep -E '^(joined|catalogue)' "$LOGS/tracker.log" | tail -n 2 | sed 's/^/      /'
  fi
  TRACKER_ENV=()
  if [ -z "${DISPLAY:-}" ] && command -v Xvfb >/dev/null; then
    # A private X display with a focused, titled window and a moving pointer, so the
    # tracker has a screen, a window title and input to record.
    go build -o "$DATA/demo-desktop" "$ROOT/scripts/demo-desktop" || die "could not build scripts/demo-desktop"
    setsid "$DATA/demo-desktop" --log-dir "$LOGS" >"$LOGS/demo-desktop.log" 2>&1 </dev/null &
    XVFB_PID=$!
    for ((i = 0; i < 150; i++)); do
      grep -q '^DISPLAY=' "$LOGS/demo-desktop.log" 2>/dev/null && break
      kill -0 "$XVFB_PID" 2>/dev/null || break
      sleep 0.1
    done
    DEMO_DISPLAY="$(sed -n 's/^DISPLAY=\(:[0-9]*\)$/\1/p' "$LOGS/demo-desktop.log")"
    [ -n "$DEMO_DISPLAY" ] || { tail -n 20 "$LOGS/demo-desktop.log" >&2; die "the demo desktop (Xvfb) did not start (log: $LOGS/demo-desktop.log)"; }
    TRACKER_ENV=(DISPLAY="$DEMO_DISPLAY")
    say "the headless tracker records a private Xvfb display $DEMO_DISPLAY (a titled window and a moving pointer)"
  elif [ -z "${DISPLAY:-}" ]; then
    say "no display and no Xvfb: the tracker runs without screenshots (apt-get install xvfb for them)"
  fi
  say "starting the headless tracker (segments of ${SEGMENT_SECONDS}s, review window ${REVIEW_SECONDS}s)"
  start tracker "$LOGS/tracker.log" env "${TRACKER_ENV[@]}" "$BIN/powdo-tracker" run --data-dir "$TRACKER_DIR" \
    --passphrase-file "$DATA/tracker-passphrase" --project "$PROJECT_ID" --activity "$ACTIVITY_ID" \
    --memo "pow.do demo" --drain 20s --status-every 30s
  TRACKER_HOW="the headless tracker: its progress lines follow below (log: $LOGS/tracker.log)."
fi

cat <<EOF

$(printf '\033[1m')pow.do demo is running$(printf '\033[0m') — data in $DATA, logs in $LOGS/

  Tracker      $TRACKER_HOW
  Work diary   $DVM_URL/
               login: $REVIEWER / $(cat "$DATA/reviewer-password")
  Kimai        (emulator, API only) timesheets booked by the DVM:
               curl -s -H 'Authorization: Bearer $KIMAI_ADMIN_TOKEN' '$KIMAI_URL/api/timesheets?user=all&full=true'
  Relay        $RELAY_URL  (Blossom: $BLOSSOM_URL, health: $BLOSSOM_URL/healthz)
  DVM          health $DVM_URL/healthz, metrics $DVM_URL/metrics
               workers: $BIN/powdo-dvm workers list --config $DATA/dvm.json

  A segment is sealed every ${SEGMENT_SECONDS}s and sent after its ${REVIEW_SECONDS}s review window;
  it shows up in the work diary and extends the Kimai timesheet.

  Stop with Ctrl-C. \`make demo\` again reuses this data; DEMO_RESET=1 make demo starts over.

EOF

if [ -z "${DESKTOP_BIN:-}" ]; then
  # Show the headless tracker's progress here; its own session, so Ctrl-C reaches only us.
  setsid bash -c 'tail -n 0 -F "$1" 2>/dev/null | grep --line-buffered -E "^(started|resumed|segment|stopped|done|error)"' \
    _ "$LOGS/tracker.log" </dev/null &
  PIDS+=("$!"); NAMES+=("log tail")
fi

# Run until Ctrl-C, or until a service dies (then say which, and stop the rest).
while :; do
  wait -n || true
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      name="${NAMES[$i]}"
      [ "$name" = "log tail" ] && { unset 'PIDS[i]' 'NAMES[i]'; PIDS=("${PIDS[@]}"); NAMES=("${NAMES[@]}"); continue 2; }
      log="$LOGS/$name.log"
      echo "----- last lines of $log" >&2; tail -n 20 "$log" >&2
      die "$name exited unexpectedly (log: $log)"
    fi
  done
done
