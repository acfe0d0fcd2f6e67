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
# Soak, CI preset (≤ 2 min): presses over 1,000 buttons, broker restarts, 30 SIGKILLs; 0 lost, 0 doubled.
scripts/soak.sh --short
