#!/bin/bash
# The colour model against its baselines (issue 18): quantizes the raster-AR and MaskGIT runs of
# models/colour/train.sh into models/baselines/ as the ARPG one was (when RUN_DIR holds them; else
# the files there are scored as they are), then scores the shipped ARPG file and both baselines
# at N = 1000 (ARPG at 8 and 32 steps, raster AR at 256, MaskGIT at 8) with three samplings: the
# library's defaults, the pages' (CFG 4 constant, temperature 0.9), and the defaults at
# temperature 1 (the grey baselines' best). Writes docs/eval/emoji/baselines-*.json and
# the sample sheets under OUT (default /tmp/arpg-emoji-baselines). In-painting and expansion are
# ARPG's alone and measured elsewhere (docs/quality.md), so they run at their minimum here.
#
#   bash models/colour/eval.sh 2>&1 | tee ~/.cache/arpg/runs/emoji/eval.log
#
# Run from the repository root after a release build of the CLI; stop other work first: the
# timings in the JSON are wall times. Settings: RUN_DIR, ARPG (as train.sh), STEPS (5000), OUT,
# N (samples per row, 1000).
set -eu
RUN_DIR=${RUN_DIR:-$HOME/.cache/arpg/runs/emoji}
ARPG=${ARPG:-${CARGO_TARGET_DIR:-$HOME/.cache/arpg/target}/release/arpg}
STEPS=${STEPS:-5000}
OUT=${OUT:-/tmp/arpg-emoji-baselines}
N=${N:-1000}
SHIPPED=www/models/arpg-emoji-int8.arpg
[ -x "$ARPG" ] || { echo "no binary at $ARPG: build it (cargo build --release -p arpg-cli)"; exit 1; }
[ -f "$SHIPPED" ] || { echo "run from the repository root ($SHIPPED missing)"; exit 1; }

baselines=()
for name in raster maskgit; do
    f32=$RUN_DIR/$name-colour.arpg int8=models/baselines/$name-emoji-int8.arpg
    if [ -f "$f32" ]; then
        saved=$("$ARPG" inspect "$f32" | sed -n 's/^training .*, \([0-9]*\) steps,.*/\1/p')
        [ "${saved:-0}" -ge "$STEPS" ] || { echo "$name has trained ${saved:-0} of $STEPS steps"; exit 1; }
        "$ARPG" quantize "$f32" "$int8"
        sha256sum "$f32"
    fi
    [ -f "$int8" ] || { echo "no $f32 to quantize and no $int8"; exit 1; }
    baselines+=(--baseline "$int8")
done
sha256sum "$SHIPPED" models/baselines/{raster,maskgit}-emoji-int8.arpg

score() {
    local tag=$1; shift
    mkdir -p "$OUT/$tag"
    "$ARPG" eval --data emoji --checkpoint "$SHIPPED" "${baselines[@]}" --steps 8,32 --n "$N" \
        --inpaint-n 1 --expand-n 2 --out-dir "$OUT/$tag" --json "$@" > "docs/eval/emoji/baselines-$tag.json"
}
score defaults
score cfg4 --cfg 4 --cfg-schedule constant --temperature 0.9
score t1 --temperature 1
echo "$(date -u +%FT%TZ) done: docs/eval/emoji/baselines-{defaults,cfg4,t1}.json, sheets in $OUT"
