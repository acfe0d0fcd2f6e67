#!/usr/bin/env bash
# Verifies systemd/onekeyd.service and fails if its security exposure is above 2.0.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=systemd/onekeyd.service
# verify wants the Exec binaries to exist; point them at the built ones in a scratch copy.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bin=$(swift build --show-bin-path)
sed "s#/usr/bin/onekeyd#$bin/onekeyd#; s#/usr/bin/onekeyctl#$bin/onekeyctl#" "$unit" > "$tmp/onekeyd.service"
systemd-analyze verify --man=no "$tmp/onekeyd.service"  # man pages are checked in the package
# Settings systemd 252 accepts but does not enforce on Debian 12 must not give a false sense of safety.
if grep -nE '^(SocketBindDeny|SocketBindAllow|RestrictFileSystems|RestrictNetworkInterfaces)=|^Type=notify-reload' "$unit"; then
  echo "check-unit: settings that take no effect on Debian 12's systemd 252 (no BPF framework)" >&2; exit 1
fi
if grep -nE '^[^#]*network-online' "$unit"; then echo "check-unit: onekeyd must not wait for the network" >&2; exit 1; fi
score=$(systemd-analyze security --offline=true "$tmp/onekeyd.service" 2>/dev/null | grep 'Overall exposure level' | grep -oE '[0-9]+\.[0-9]+' | tail -1)
echo "systemd-analyze security: exposure $score (limit 2.0)"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'
