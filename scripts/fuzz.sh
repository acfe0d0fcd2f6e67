#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside bytes (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh --list                 names the targets
#   scripts/fuzz.sh --build                builds .build-fuzz/onekey-fuzz only
#   scripts/fuzz.sh TARGET SECONDS [ARGS]  runs one target for SECONDS with its seed corpus
#
# The target bodies live in Sources/OnekeyFuzzTargets (the same code the unit tests replay).
# Corpus: Fuzz/Corpus/TARGET (seeds, in git) + .build-fuzz/corpus/TARGET (grown, not in git).
# A crash, leak or timeout is saved as Fuzz/Regressions/TARGET/<kind>-<sha1>;
# FuzzRegressionTests replays every file there. Extra ARGS go to libFuzzer (e.g. -runs=N).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.build-fuzz
BIN=$OUT/onekey-fuzz

targets() { sed -n 's/.*FuzzTarget(name: "\([^"]*\)".*/\1/p' Sources/OnekeyFuzzTargets/FuzzTargets.swift; }

build() {
    local stamp=$OUT/stamp
    local newest
    newest=$(find Sources/OnekeyCore Sources/OnekeyFuzzTargets Fuzz/Entry -name '*.swift' -newer "$stamp" 2>/dev/null | head -1 || true)
    if [[ -x $BIN && -f $stamp && -z $newest ]]; then return; fi
    mkdir -p "$OUT/mod"
    local flags=(-O -sanitize=fuzzer,address -parse-as-library -swift-version 6 -I "$OUT/mod" -g)
    echo "fuzz.sh: building OnekeyCore with coverage + ASan" >&2
    swiftc "${flags[@]}" -module-name OnekeyCore -emit-module -emit-module-path "$OUT/mod/OnekeyCore.swiftmodule" \
        -emit-library -static -o "$OUT/libOnekeyCore.a" $(find Sources/OnekeyCore -name '*.swift' | sort)
    swiftc "${flags[@]}" -module-name OnekeyFuzzTargets -emit-module -emit-module-path "$OUT/mod/OnekeyFuzzTargets.swiftmodule" \
        -emit-library -static -o "$OUT/libOnekeyFuzzTargets.a" $(find Sources/OnekeyFuzzTargets -name '*.swift' | sort)
    swiftc "${flags[@]}" -module-name OnekeyFuzzEntry Fuzz/Entry/main.swift \
        "$OUT/libOnekeyFuzzTargets.a" "$OUT/libOnekeyCore.a" -o "$BIN" 2> >(grep -v 'Cannot export local symbol' >&2)
    touch "$stamp"
}

case "${1:-}" in
    --list) targets; exit 0 ;;
    --build) build; exit 0 ;;
    ""|-h|--help) sed -n '2,12p' "$0"; exit 64 ;;
esac

TARGET=$1; SECONDS_TO_RUN=${2:-60}; shift; [[ $# -gt 0 ]] && shift
targets | grep -qx "$TARGET" || { echo "fuzz.sh: unknown target $TARGET (try --list)" >&2; exit 64; }
build
SEEDS=$ROOT/Fuzz/Corpus/$TARGET
GROWN=$OUT/corpus/$TARGET
REG=$ROOT/Fuzz/Regressions/$TARGET
ART=$OUT/artifacts/$TARGET/
mkdir -p "$SEEDS" "$GROWN" "$REG" "$ART"
# Inputs longer than a target's unit gain nothing but time: a decoder sees frames of 6–30 bytes
# (its 4 KiB buffer cap is tested by SerialAbuseTests), an AT line is at most 1 KiB, a control
# request or an ack is a short JSON line. FUZZ_MAX_LEN overrides.
max_len_for() {
    case $1 in
        ev1527) echo 256 ;;
        evdev|surgard) echo 512 ;;
        json|control-request|mqtt-ack) echo 1024 ;;
        modem-at) echo 1536 ;;
        *) echo 2048 ;;
    esac
}
DICT=()
[[ -f Fuzz/Dictionaries/$TARGET.dict ]] && DICT=(-dict="$ROOT/Fuzz/Dictionaries/$TARGET.dict")
set +e
ONEKEY_FUZZ_TARGET=$TARGET "$BIN" "$GROWN" "$SEEDS" -max_total_time="$SECONDS_TO_RUN" \
    -max_len="${FUZZ_MAX_LEN:-$(max_len_for "$TARGET")}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ART" "${DICT[@]}" "$@"
rc=$?
set -e
found=0
for f in "$ART"*; do
    [[ -f $f ]] || continue
    cp "$f" "$REG/"; rm -f "$f"; found=1
    echo "fuzz.sh: kept $REG/$(basename "$f")" >&2
done
exit $(( rc != 0 || found ))
