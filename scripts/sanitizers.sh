#!/usr/bin/env bash
# Builds the package and runs the test suite under ThreadSanitizer and AddressSanitizer.
# The integration tests start the sanitized onekeyd/onekeyctl binaries from the same build, so
# races and memory errors in the daemon itself are caught too (a sanitizer report makes the
# daemon exit non-zero and the test that drove it fail; reports also land in the daemon's log).
#
#   scripts/sanitizers.sh [thread|address|all] [--filter REGEX]
#
# Separate build directories (.build-tsan, .build-asan) keep the normal build warm.
# Timings on this 2-core machine are in docs/robustness.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-all}; shift || true
FILTER=()
[[ ${1:-} == --filter ]] && FILTER=(--filter "$2")
SUPP=$PWD/scripts/sanitizers
export TSAN_OPTIONS=${TSAN_OPTIONS:-"halt_on_error=1 second_deadlock_stack=1 suppressions=$SUPP/tsan.supp"}
export ASAN_OPTIONS=${ASAN_OPTIONS:-"detect_leaks=0 halt_on_error=1 suppressions=$SUPP/asan.supp"}
run() {
    local name=$1 dir=$2
    local t0=$SECONDS
    echo "== $name: build" >&2
    swift build --build-tests --sanitize="$name" --scratch-path "$dir"
    local t1=$SECONDS
    echo "== $name: test" >&2
    swift test --skip-build --sanitize="$name" --scratch-path "$dir" "${FILTER[@]}"
    echo "== $name: build $((t1 - t0)) s, tests $((SECONDS - t1)) s" >&2
}
case $WHICH in
    thread) run thread .build-tsan ;;
    address) run address .build-asan ;;
    all) run thread .build-tsan; run address .build-asan ;;
    *) sed -n '2,9p' "$0"; exit 64 ;;
esac
