#!/usr/bin/env bash
# Runs the gateway for real: a mosquitto on loopback, a virtual EV1527 panic button (a pty pair),
# onekeyd, and a subscriber that shows the pages. Presses the button, lets the alert escalate
# from the primary to the backup, acknowledges it over MQTT as the backup's phone app would,
# and resolves it with onekeyctl. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --product onekeyd && swift build --product onekeyctl
BIN=$(swift build --show-bin-path)
WORK=$(mktemp -d /tmp/onekeyd-demo-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
CONF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 & PIDS+=($!)
# The virtual button: onekeyd reads $WORK/receiver; we write frames into $WORK/button.
socat pty,raw,echo=0,link="$WORK/receiver" pty,raw,echo=0,link="$WORK/button" & PIDS+=($!)
for _ in $(seq 50); do
  if [ -e "$WORK/button" ] && python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; then break; fi
  sleep 0.1
done

cat > "$WORK/onekeyd.toml" <<CONF
[gateway]
id = "demo-gateway"
state_dir = "$WORK/state"
control_socket = "$WORK/control.sock"
timezone = "Asia/Shanghai"
[mqtt]
host = "127.0.0.1"
port = $PORT
[[port]]
path = "$WORK/receiver"
driver = "ev1527"
[[device]]
id = "btn-chen-401"
driver = "ev1527"
address = "A1B2C"
grid = "grid-07"
resident = "陈婆婆"
location = "双合店社区 3栋2单元401"
[[grid]]
id = "grid-07"
name = "第七网格"
policy = "demo"
[[member]]
id = "m-135"
name = "仲毓萍"
[[member]]
id = "m-136"
name = "李建国"
[[shift]]
grid = "grid-07"
member = "m-135"
role = "primary"
start = "00:00"
end = "24:00"
[[shift]]
grid = "grid-07"
member = "m-136"
role = "backup"
start = "00:00"
end = "24:00"
# A short ladder so the demo shows escalation: the backup after 8 s.
[[policy]]
id = "demo"
[[policy.step]]
after_s = 0
notify = ["grid:primary"]
[[policy.step]]
after_s = 8
notify = ["grid:backup"]
CONF

echo "== pages as the grid workers' phones receive them (MQTT, 127.0.0.1:$PORT) =="
mosquitto_sub -p "$PORT" -t 'onekey/v1/members/+/pages' -F '>> PAGE %t %p' & PIDS+=($!)
# Its log through sed, with $! the daemon's PID (not sed's), so cleanup stops the daemon itself.
"$BIN/onekeyd" --config "$WORK/onekeyd.toml" > >(sed -u 's/^/   onekeyd: /') 2>&1 & PIDS+=($!)
CTL=("$BIN/onekeyctl" --socket "$WORK/control.sock")
for _ in $(seq 100); do "${CTL[@]}" status >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5

echo; echo "== 陈婆婆 presses her button (the receiver repeats the frame 3 times) =="
for _ in 1 2 3; do printf '\xfd\xa1\xb2\xc8\x1e\xdf' > "$WORK/button"; sleep 0.05; done
sleep 1
"${CTL[@]}" alerts
ID=$("${CTL[@]}" --json alerts | python3 -c 'import json,sys; print(json.load(sys.stdin)["alerts"][0]["id"])')

echo; echo "== nobody acknowledges: after 8 s the backup is paged =="
sleep 8.5
"${CTL[@]}" alert "$ID"

echo; echo "== the backup (m-136) acknowledges from the phone app =="
mosquitto_pub -p "$PORT" -q 1 -t onekey/v1/members/m-136/acks -m "{\"alert\":\"$ID\",\"action\":\"ack\"}"
sleep 1
"${CTL[@]}" alerts

echo; echo "== on site; the operator resolves it =="
"${CTL[@]}" resolve "$ID" --member m-136 --note "到场, 老人摔倒已扶起"
"${CTL[@]}" status
echo; echo "demo finished; state in $WORK"
