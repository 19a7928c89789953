"""Pack the FER2013 npz and an ImageNet state dict small enough to travel to a lent GPU machine.

The device tool copies at most 64 MiB (the working tree included) and the machine reaches no
registry, so the teacher's inputs go with the call: the faces as WebP (quality 95: 45 dB PSNR,
36 MB instead of 57) with the pixel hashes of the originals (so that probabilities computed there
find their faces here), and the ImageNet weights in half precision.

    python scripts/device_pack.py pack --data fer2013_train_val.npz --arch lite2 --out .device
    python scripts/device_pack.py unpack .device/fer_webp.npz /tmp/fer.npz     # on the GPU machine

``scripts/device_teachers.sh`` runs the teachers from the packed files and returns their
``teacher.pt``. Teachers trained on these faces are scored again on the original npz here
(``scripts/teacher_ensemble.py``) before anything is distilled from them.
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fer_ros.learning.datasets import image_hashes  # noqa: E402

KEYS = ("labels", "usage", "ferplus_votes", "hashes")


def pack(data: str, out: str, quality: int) -> str:
    src = np.load(data, allow_pickle=False)
    blobs = []
    for face in src["images"]:
        ok, buf = cv2.imencode(".webp", face, [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise SystemExit("error: this OpenCV cannot write WebP; pip install opencv-python-headless")
        blobs.append(buf.ravel())
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    path = os.path.join(out, "fer_webp.npz")
    np.savez_compressed(path, webp=np.concatenate(blobs), offsets=offsets, shape=np.array(src["images"].shape[1:]),
                        hashes=image_hashes(src["images"]).astype("S16"), **{k: src[k] for k in KEYS if k != "hashes"})
    back = unpack_images(np.load(path))
    mse = float(((back.astype(np.float32) - src["images"]) ** 2).mean())
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB for {len(back)} faces, PSNR {10 * np.log10(255 ** 2 / mse):.1f} dB")
    return path


def unpack_images(packed) -> np.ndarray:
    webp, offsets = packed["webp"], packed["offsets"]
    faces = [cv2.imdecode(webp[a:b], cv2.IMREAD_GRAYSCALE) for a, b in zip(offsets[:-1], offsets[1:])]
    if any(f is None or f.shape != tuple(packed["shape"]) for f in faces):
        raise SystemExit("error: a packed face does not decode; pack the npz again")
    return np.stack(faces)


def half_weights(arch: str, out: str) -> str:
    import torch

    from fer_ros.learning.efficientnet_lite import pretrained_path

    state = torch.load(pretrained_path(arch), map_location="cpu", weights_only=True)
    path = os.path.join(out, f"imagenet_{arch}.pt")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--data", required=True, help="the FER2013 npz with FER+ votes")
    a.add_argument("--arch", action="append", default=[], help="ImageNet weights to pack (repeatable)")
    a.add_argument("--out", default=".device", help="a folder git ignores (.git/info/exclude)")
    a.add_argument("--quality", type=int, default=95)
    u = sub.add_parser("unpack")
    u.add_argument("packed")
    u.add_argument("npz")
    args = p.parse_args()
    if args.cmd == "pack":
        os.makedirs(args.out, exist_ok=True)
        pack(args.data, args.out, args.quality)
        for arch in args.arch:
            half_weights(arch, args.out)
    else:
        packed = np.load(args.packed, allow_pickle=False)
        arrays = {k: packed[k] for k in KEYS}
        arrays["hashes"] = arrays["hashes"].astype(str)
        np.savez(args.npz, images=unpack_images(packed), **arrays)
        print(f"{args.npz}: {len(packed['labels'])} faces")


if __name__ == "__main__":
    main()
