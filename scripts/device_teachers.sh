#!/usr/bin/env bash
# Fine-tune EfficientNet-Lite teachers on a lent GPU machine from what scripts/device_pack.py packed
# into .device/ (the faces as WebP, the ImageNet weights in half precision), and hand back each
# teacher's half-precision weights and its log (one JSON line an epoch, PublicTest every 5 epochs).
#
#   device tool: run(command="MINUTES=4 scripts/device_teachers.sh lite2:128:40:0 lite2:160:40:1", carry=[".device"])
#
# Each spec is ARCH:SIZE:EPOCHS:SEED; all specs of one call use the arch that was packed. $OUT gets
# teacher_ARCH_SIZEsSEED.pt after every epoch, so a run cut short still returns its latest epoch.
# After the last epoch it writes teacher_ARCH_SIZEsSEED.probs.npz: both heads' probabilities for every
# face, keyed by the original faces' pixel hashes, which `fer-ros train --teacher FILE.npz` distils
# from here without running the teacher on the CPU.
# MINUTES=4 gives each teacher four minutes: after its first epoch, EPOCHS is cut to what fits.
# DEVICE=cpu and TEACHER_ARGS="--max-samples 256" make a quick local rehearsal.
set -euo pipefail
out=${OUT:?run me through the device tool, which sets OUT}
py=${PYTHON:-python3}
work=$(mktemp -d)
[ $# -gt 0 ] || { echo "usage: $0 ARCH:SIZE:EPOCHS:SEED ..." >&2; exit 2; }
[ -f .device/fer_webp.npz ] || { echo "error: .device/fer_webp.npz missing; run scripts/device_pack.py pack and carry .device" >&2; exit 2; }
"$py" scripts/device_pack.py unpack .device/fer_webp.npz "$work/fer.npz" >&2
for spec in "$@"; do
  IFS=: read -r arch size epochs seed <<<"$spec"
  name="teacher_${arch}_${size}s${seed}"
  [ -f ".device/imagenet_$arch.pt" ] || { echo "error: .device/imagenet_$arch.pt missing; pack --arch $arch" >&2; exit 2; }
  # shellcheck disable=SC2086
  "$py" -m fer_ros.learning.teacher --device "${DEVICE:-cuda}" --data "$work/fer.npz" \
    --imagenet ".device/imagenet_$arch.pt" --arch "$arch" --size "$size" --epochs "$epochs" --seed "$seed" \
    --batch-size "${BATCH:-128}" --lr "${LR:-1e-3}" --eval-every "${EVAL_EVERY:-5}" --minutes "${MINUTES:-0}" \
    --out "$work/$name" --export "$out/$name.pt" --probabilities "$out/$name.probs.npz" ${TEACHER_ARGS:-} 2>&1 | tee "$out/$name.log"
done
