#!/usr/bin/env bash
# Runs every test: unit tests (pure core, injected clock) and integration tests (real mosquitto on
# a free loopback port, ptys as serial receivers, the built onekeyd and onekeyctl).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
# The unit file must stay valid and locked down (CONTRACT §9).
scripts/check-unit.sh
# The Debian package under a real systemd (Debian 12 booted in systemd-nspawn; needs root).
if [ "$(id -u)" -eq 0 ]; then
  scripts/test-system.sh
else
  echo "test.sh: skipping scripts/test-system.sh (needs root)" >&2
fi
# Soak, CI preset (≤ 2 min): presses over 1,000 buttons, broker restarts, 30 SIGKILLs; 0 lost, 0 doubled.
scripts/soak.sh --short
