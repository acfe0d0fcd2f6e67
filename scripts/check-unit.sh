#!/usr/bin/env bash
# Verifies systemd/onekeyd.service and fails if its security exposure is above 2.0.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=systemd/onekeyd.service
# verify wants the ExecStart binary to exist; point it at the built one in a scratch copy.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bin=$(swift build --show-bin-path)/onekeyd
sed "s#/usr/local/bin/onekeyd#$bin#; s#/usr/local/bin/onekeyctl#$(dirname "$bin")/onekeyctl#" "$unit" > "$tmp/onekeyd.service"
systemd-analyze verify "$tmp/onekeyd.service"
score=$(systemd-analyze security --offline=true "$tmp/onekeyd.service" 2>/dev/null | grep 'Overall exposure level' | grep -oE '[0-9]+\.[0-9]+' | tail -1)
echo "systemd-analyze security: exposure $score (limit 2.0)"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'
