#!/bin/bash
# Train generators on a GPU through Vulkan, in one call of the workplace's `device` tool
# (a Linux machine with an NVIDIA driver and no network). See models/README.md, "On a GPU".
#
# Prepare here, in the repo root (everything under .gpu/ and .gl/ is carried, 64 MiB in all):
#   make check-gpu   # clippy of the `vulkan` feature, which `make test` does not compile
#   cargo build --release -p arpg-cli --features vulkan
#   strip -o /tmp/arpg $CARGO_TARGET_DIR/release/arpg && xz -9e -T2 -c /tmp/arpg > .gpu/arpg.xz
#   cp tok.arpg .gpu/ && mkdir -p .gpu/data && for f in train-images-idx3-ubyte train-labels-idx1-ubyte; do
#     gzip -dc /usr/share/datasets/fashion-mnist/$f.gz | xz -9e -c > .gpu/data/$f.xz; done
#   .gl/: the Vulkan loader's .deb files (the device tool's README says how to fetch them)
# Run there:  STEPS=N [MODES="arpg raster maskgit"] [BUDGET=s] [EXTRA="--layers 12"] bash models/train-gpu.sh
# It writes <mode>.arpg (f32), <mode>.metrics.jsonl and log.txt to $OUT, and the kernel cache as
# cubecl-cache.tar.gz: put that in .gpu/ and the next call skips most of the ~2 min of shader
# compilation and autotuning that each run starts with.
set -u
T0=$(date +%s)
: "${STEPS:?set STEPS}"
MODES=${MODES:-arpg}
BUDGET=${BUDGET:-540}
OUT=${OUT:-/tmp/out}
G=.gpu
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
t() { echo $(( $(date +%s) - T0 )); }

for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f $G/cubecl-cache.tar.gz ] && tar -xzf $G/cubecl-cache.tar.gz
python3 - <<'EOF'
import gzip, lzma, os, shutil
os.makedirs("/tmp/data", exist_ok=True)
for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
    with lzma.open(f".gpu/data/{n}.xz") as src, gzip.open(f"/tmp/data/{n}.gz", "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
with lzma.open(".gpu/arpg.xz") as src, open("/tmp/arpg", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod("/tmp/arpg", 0o755)
EOF
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "[$(t)s] steps=$STEPS modes=$MODES budget=$BUDGET"

RUNS=
for m in $MODES; do
  cmd=(/tmp/arpg train --device vulkan --tokenizer $G/tok.arpg --data-dir /tmp/data --mode "$m"
    --batch "${BATCH:-256}" --lr "${LR:-1e-3}" --warmup "${WARMUP:-500}" --seed "${SEED:-0}" --steps "$STEPS"
    --out "$OUT/$m.arpg" --state "/tmp/$m.state" --log "$OUT/$m.metrics.jsonl" --save-every 0.5 ${EXTRA:-})
  echo "${cmd[*]}"
  # Stopped before the call's own limit, so that the last save (every 30 s) comes back.
  timeout $(( BUDGET - $(t) )) "${cmd[@]}" > "/tmp/$m.log" 2>&1 &
  RUNS="$RUNS $!"
done
wait $RUNS  # not a bare `wait`: that would also wait for the tee above
for m in $MODES; do tr '\r' '\n' < "/tmp/$m.log" | tail -2; done
[ -d target/environment ] && tar -czf "$OUT/cubecl-cache.tar.gz" target/environment
ls -la "$OUT"
echo "[$(t)s] done"
