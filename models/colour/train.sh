#!/bin/bash
# The colour model's three generator runs (issue 18): ARPG (multi-scale), then the raster-AR and
# MaskGIT baselines side by side, on the same tokenizer, data, augmentation, steps, batch and seed;
# each started or resumed exactly where it stopped. All three finished (their int8 files:
# www/models/arpg-emoji-int8.arpg, models/baselines/*-emoji-int8.arpg); on a machine without their
# states this trains them anew. A finished run is skipped, so the same
# command continues the whole plan after any stop (a session's end, a reboot):
#
#   nohup bash models/colour/train.sh >> ~/.cache/arpg/runs/emoji/train.log 2>&1 &
#
# The machine's cache may not outlive a session; the repository does. `train.sh keep` copies the
# runs' states and logs into models/colour/runs/ (to be committed), and a run with no state in
# RUN_DIR resumes from the one there.
#
# Run from the repository root after `make emoji-data` and a release build of the CLI. Settings:
# RUN_DIR (default ~/.cache/arpg/runs/emoji), ARPG (the binary; default the Makefile's target dir),
# STEPS (default 5000), ONLY (a subset of "arpg raster maskgit"; default the baselines: the
# ARPG run's state was lost with a machine), BASELINE_THREADS (default 1).
set -eu
RUN_DIR=${RUN_DIR:-$HOME/.cache/arpg/runs/emoji}
ARPG=${ARPG:-${CARGO_TARGET_DIR:-$HOME/.cache/arpg/target}/release/arpg}
STEPS=${STEPS:-5000}
TOKENIZER=$(pwd)/models/colour/tok-emoji-1024.arpg
KEPT=$(pwd)/models/colour/runs
stages=${ONLY:-raster maskgit}
if [ "${1:-}" = keep ]; then
    mkdir -p "$KEPT"
    for s in $stages; do cp -v "$RUN_DIR/$s-colour".{state,metrics.jsonl} "$KEPT/"; done
    exit 0
fi
[ -x "$ARPG" ] || { echo "no binary at $ARPG: build it (cargo build --release -p arpg-cli)"; exit 1; }
[ -f "$TOKENIZER" ] || { echo "run from the repository root ($TOKENIZER missing)"; exit 1; }
mkdir -p "$RUN_DIR"
cd "$RUN_DIR"

# The steps a run's saved checkpoint has trained (nothing before its first save).
saved_steps() { [ -f "$1.arpg" ] && "$ARPG" inspect "$1.arpg" | sed -n 's/^training .*, \([0-9]*\) steps,.*/\1/p' || true; }

# run NAME MODE-FLAGS...: start NAME.arpg, resume it, or skip it when it reached STEPS.
run() {
    local name=$1; shift
    if [ ! -f "$name.state" ] && [ -f "$KEPT/$name.state" ]; then
        echo "$(date -u +%FT%TZ) $name: taking the state kept in $KEPT"
        cp "$KEPT/$name.state" "$KEPT/$name.metrics.jsonl" .
    fi
    local saved; saved=$(saved_steps "$name"); saved=${saved:-0}
    if [ "$saved" -ge "$STEPS" ]; then
        echo "$(date -u +%FT%TZ) $name: finished ($saved steps)"
    elif [ -f "$name.state" ]; then
        echo "$(date -u +%FT%TZ) $name: resuming after step $saved"
        "$ARPG" train --resume --out "$name.arpg" --save-every 10
    else
        echo "$(date -u +%FT%TZ) $name: starting"
        "$ARPG" train --data emoji --tokenizer "$TOKENIZER" "$@" --augment --out "$name.arpg" \
            --steps "$STEPS" --batch 32 --seed 0 --save-every 10
    fi
}

stage() {
    case $1 in
        arpg) run arpg-colour --multi-scale ;;
        raster) run raster-colour --mode raster ;;
        maskgit) run maskgit-colour --mode maskgit ;;
        *) echo "unknown stage $1"; return 1 ;;
    esac
}

# ARPG first, on every core. Then the two baselines side by side, one thread each: on the 2-core
# machine that trains them 1.5x faster than one after the other on both cores (measured
# 2026-12-05: 3.65 s a step for each of two one-thread runs at once, 2.8 s for one run alone on
# two threads; burn-flex gains little from a second core at batch 32). BASELINE_THREADS changes it.
case " $stages " in *" arpg "*) stage arpg ;; esac
pids=()
for s in $stages; do
    [ "$s" = arpg ] && continue
    (export RAYON_NUM_THREADS=${BASELINE_THREADS:-1}; stage "$s") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "$(date -u +%FT%TZ) all runs finished"
