#!/usr/bin/env bash
# The package under a real systemd (issue 12): boots Debian 12 in systemd-nspawn, installs the
# built .deb with apt, and checks, with nothing done by hand, what a field install relies on:
# the user, the enabled and active unit, STATUS=, a press on a (pty) receiver paged through the
# container's mosquitto and its story in the journal, reload refusing a broken file, a watchdog
# restart, the sandbox, a clean stop, remove and purge.
#
# Needs root, systemd-container, debootstrap. The Debian 12 minbase rootfs is built once and
# cached in $ONEKEYD_TEST_CACHE (default /var/cache/onekeyd-test; cold ~2.5 min, cached ~30 s);
# each run boots a throw-away overlay (or copy) of it.
# Usage: scripts/test-system.sh [path/to/onekeyd_*.deb]   (default: build it with package.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "test-system: needs root (systemd-nspawn)" >&2; exit 1; }
deb=${1:-$(scripts/package.sh | tail -1)}
cache=${ONEKEYD_TEST_CACHE:-/var/cache/onekeyd-test}
base=$cache/bookworm-minbase

if [[ ! -x $base/usr/sbin/mosquitto ]]; then
  echo "test-system: building the Debian 12 rootfs in $base (once)"
  mkdir -p "$cache"; rm -rf "$base.tmp"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,udev,mosquitto,mosquitto-clients,socat,procps,tzdata,libmosquitto1,libsqlite3-0,libudev1,passwd \
    bookworm "$base.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  mv "$base.tmp" "$base"
fi

work=$(mktemp -d /var/tmp/onekeyd-system.XXXXXX)
root=$work/root
nspawn_pid=""
cleanup() {
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  mountpoint -q "$root" && umount -l "$root"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$root" "$work/upper" "$work/ovl"
if ! mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl" "$root" 2>/dev/null; then
  cp -a "$base/." "$root/"
fi
cp "$deb" "$root/root/onekeyd.deb"
echo onekeyd-test > "$root/etc/hostname"

SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet -D "$root" --boot --register=no --keep-unit \
  --system-call-filter=bpf --private-network --machine=onekeyd-test --console=pipe \
  </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!

pid1=""
for _ in $(seq 100); do
  for c in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null); do
    [[ $(readlink "/proc/$c/exe" 2>/dev/null) == */systemd ]] && pid1=$c
  done
  [[ -n $pid1 ]] && break; sleep 0.1
done
[[ -n $pid1 ]] || { cat "$work/console.log" >&2; echo "test-system: the container did not boot" >&2; exit 1; }
ct() { nsenter -t "$pid1" -a -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
for _ in $(seq 120); do
  state=$(ct systemctl is-system-running 2>/dev/null || true)
  [[ $state == running || $state == degraded ]] && break; sleep 0.5
done
echo "test-system: container booted ($state)"

failures=0
check() {  # check "what" command...
  local what=$1; shift
  if "$@" >"$work/check.out" 2>&1; then echo "ok - $what"; else
    echo "FAIL - $what"; sed 's/^/    /' "$work/check.out" | tail -15; failures=$((failures + 1)); fi
}
eventually() {  # eventually SECONDS command...: retries until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.5; done
}
mainpid() { ct systemctl show -p MainPID --value onekeyd; }
prop() { ct systemctl show -p "$1" --value onekeyd; }
export pid1
export -f ct eventually mainpid prop

# --- Install ------------------------------------------------------------------------------
check "apt installs the package offline (only Debian 12 packages needed)" ct apt-get install -y /root/onekeyd.deb
check "the onekeyd user exists, in groups dialout and input" \
  bash -c "ct id onekeyd | grep -q dialout && ct id onekeyd | grep -q input"
check "the unit is enabled" bash -c "[[ \$(ct systemctl is-enabled onekeyd) == enabled ]]"
check "the unit is active with the shipped configuration" eventually 20 bash -c "[[ \$(ct systemctl is-active onekeyd) == active ]]"
check "man pages, docs, completion and rules are installed" ct test -f /usr/share/man/man8/onekeyd.8.gz -a -f /usr/share/man/man1/onekeyctl.1.gz \
  -a -f /usr/share/man/man5/onekeyd.toml.5.gz -a -f /usr/share/doc/onekeyd/copyright -a -f /usr/share/bash-completion/completions/onekeyctl \
  -a -f /usr/lib/udev/rules.d/61-onekeyd.rules -a -f /usr/lib/sysusers.d/onekeyd.conf -a -f /lib/systemd/system/onekeyd.service

# --- A receiver: a pty pair, one end where the daemon reads, the other where the test writes ---
ct mkdir -p /run/onekey-test
ct systemd-run --quiet --unit=fake-receiver socat pty,raw,echo=0,link=/run/onekey-test/receiver pty,raw,echo=0,link=/run/onekey-test/feed
eventually 10 ct test -e /run/onekey-test/receiver
ct sh -c 'chgrp dialout "$(readlink -f /run/onekey-test/receiver)" && chmod 660 "$(readlink -f /run/onekey-test/receiver)"'
# The shipped configuration with the receiver's path, and a port on a device the unit does not
# allow (/dev/net/tun: mode 0666, so only DevicePolicy= can refuse it).
ct sed -i 's#^path = "/dev/ttyUSB0"#path = "/run/onekey-test/receiver"#' /etc/onekeyd/onekeyd.toml
ct sh -c 'printf "\n[[port]]\npath = \"/dev/net/tun\"\ndriver = \"ev1527\"\n" >> /etc/onekeyd/onekeyd.toml'
check "onekeyd --check-config accepts the edited file" ct onekeyd --check-config
check "a restart with the new file succeeds" ct systemctl restart onekeyd
check "STATUS= carries a summary" eventually 10 bash -c "[[ -n \$(ct systemctl show -p StatusText --value onekeyd) ]]"
echo "    STATUS=$(prop StatusText)"
check "LimitNOFILE is 4096" bash -c "ct grep -q 'Max open files *4096 *4096' /proc/\$(mainpid)/limits"

# --- A press is paged, and its story is in the journal ---------------------------------------
ct systemd-run --quiet --unit=pager-sub sh -c 'mosquitto_sub -h 127.0.0.1 -v -t "onekey/v1/members/+/pages" > /run/onekey-test/pages'
sleep 2
ct sh -c "printf '\375\241\262\310\036\337' > /run/onekey-test/feed"
check "a press on the receiver is paged through mosquitto" eventually 15 ct grep -q '"alert"' /run/onekey-test/pages
alert=$(ct sed -n 's/.*"alert":"\([^"]*\)".*/\1/p' /run/onekey-test/pages | head -1)
echo "    alert $alert: $(ct head -c 300 /run/onekey-test/pages)"
check "journalctl -u onekeyd ONEKEY_ALERT_ID=$alert tells its story" \
  eventually 10 bash -c "[[ -n '$alert' && \$(ct journalctl -q -u onekeyd ONEKEY_ALERT_ID='$alert' | wc -l) -ge 2 ]]"
ct journalctl -q -u onekeyd ONEKEY_ALERT_ID="$alert" --no-pager -o cat | head -5 | sed 's/^/    /'

# --- onekeyctl's permissions (issue 10): a stranger gets 77 with a hint --------------------------
check "root can use onekeyctl" ct onekeyctl status
check "a user outside the onekeyd group gets exit 77 and a hint" bash -c \
  "ct setpriv --reuid=nobody --regid=nogroup --clear-groups onekeyctl status 2>&1 | tee /dev/stderr | grep -q 'onekeyd group'; [[ \${PIPESTATUS[0]} == 77 ]]"

# --- The sandbox ---------------------------------------------------------------------------
pid=$(mainpid)
check "no capabilities (CapEff, CapPrm, CapBnd all zero)" bash -c \
  "ct grep -E '^Cap(Eff|Prm|Bnd):' /proc/$pid/status | tee /dev/stderr | awk '{ if (\$2 !~ /^0+\$/) bad=1 } END { exit bad }'"
check "runs as onekeyd, not root" bash -c "ct grep -E '^Uid:' /proc/$pid/status | awk '{ exit (\$2 == 0) }'"
check "/usr is read-only for the service" bash -c "ct nsenter -t $pid -m touch /usr/lib/onekeyd-probe 2>&1 | grep -q 'Read-only'"
check "/etc is read-only for the service" bash -c "ct nsenter -t $pid -m touch /etc/onekeyd/probe 2>&1 | grep -q 'Read-only'"
check "a device outside DeviceAllow= is refused (/dev/net/tun)" eventually 10 bash -c \
  "ct onekeyctl --json status | tr '}' '\n' | grep '/dev/net/tun' | grep -qi 'not permitted'"

# --- Reload: a good file is applied, a broken one refused and the old one kept -----------------
ct cp /etc/onekeyd/onekeyd.toml /root/good.toml
ct sh -c 'printf "\n[[device]]\nid = \"btn-new\"\ndriver = \"ev1527\"\naddress = \"0AAAA\"\ngrid = \"grid-07\"\n" >> /etc/onekeyd/onekeyd.toml'
check "systemctl reload applies a good file" ct systemctl reload onekeyd
check "the new device is in force when reload returns" bash -c "ct onekeyctl devices | grep -q btn-new"
ct sh -c 'printf "\n[[device]]\nid = \"btn-bad\"\ndriver = \"ev1527\"\naddress = \"0BBBB\"\ngrid = \"grid-99\"\n" >> /etc/onekeyd/onekeyd.toml'
check "systemctl reload fails on a broken file" bash -c "! ct systemctl reload onekeyd"
check "the daemon runs on, same PID, old configuration" bash -c \
  "[[ \$(ct systemctl is-active onekeyd) == active && \$(ct systemctl show -p MainPID --value onekeyd) == $pid ]] && ct onekeyctl devices | grep -q btn-new && ! ct onekeyctl devices | grep -q btn-bad"
check "the refusal names FILE:LINE in the journal" bash -c "ct journalctl -q -u onekeyd --no-pager | grep -q 'onekeyd.toml:[0-9]*: .*grid-99'"
ct cp /root/good.toml /etc/onekeyd/onekeyd.toml

# --- Watchdog: a hung daemon is killed and restarted ------------------------------------------
restarts=$(prop NRestarts)
ct kill -STOP "$pid"
check "a watchdog timeout (SIGSTOP) restarts the daemon" eventually 75 bash -c \
  "[[ \$(ct systemctl show -p MainPID --value onekeyd) != $pid && \$(ct systemctl is-active onekeyd) == active && \$(ct systemctl show -p NRestarts --value onekeyd) -gt $restarts ]]"
check "the journal says watchdog" bash -c "ct journalctl -q -u onekeyd --no-pager | grep -qi 'watchdog timeout'"

# --- Stop, remove, purge -----------------------------------------------------------------------
eventually 10 bash -c "[[ \$(ct systemctl is-active onekeyd) == active ]]"
lines=$(ct journalctl -q -u onekeyd --no-pager | wc -l)
check "stop is clean (exit 0, nothing killed)" bash -c \
  "ct systemctl stop onekeyd && [[ \$(prop Result) == success && \$(prop ExecMainStatus) == 0 ]] && ! ct journalctl -q -u onekeyd --no-pager | tail -n +$((lines + 1)) | grep -Ei 'SIGKILL|Killing|timed out'"
check "offline status retained on the broker after stop" bash -c \
  "ct mosquitto_sub -h 127.0.0.1 -C 1 -W 5 -t 'onekey/v1/gateways/+/status' | grep -q offline"
ct systemctl start onekeyd || true
check "apt-get remove stops the service and removes the programs" bash -c \
  "ct apt-get remove -y onekeyd && ! ct pgrep -x onekeyd && ! ct test -e /usr/bin/onekeyd && ! ct test -e /lib/systemd/system/onekeyd.service"
check "remove keeps the configuration and the store" ct test -f /etc/onekeyd/onekeyd.toml -a -d /var/lib/onekeyd
check "purge removes the configuration and the store" bash -c \
  "ct apt-get purge -y onekeyd && ! ct test -e /etc/onekeyd && ! ct test -e /var/lib/onekeyd"

if ((failures)); then
  echo "test-system: $failures check(s) failed; onekeyd's journal:"; ct journalctl -q -u onekeyd --no-pager | tail -40
  exit 1
fi
echo "test-system: all checks passed"
