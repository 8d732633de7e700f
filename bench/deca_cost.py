#!/usr/bin/env python
"""What the ``deca`` backend of the 3D prior costs: DECA's two encoders (ResNet-50 each, 224 px) per frame in
the stage (forward, no gradient), and per carrier step in the fit (forward and backward into the pixels),
for a batch of ``--batch`` crops. The weights are random (a file in DECA's format written here: the cost
does not depend on them; DECA's own file is licensed and not here).

    python bench/deca_cost.py --threads 2 --batch 4 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(REPO / "tests"))
    from nice_core.prior3d.deca import cut_crops, load_deca_encoders

    from conftest import write_deca_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deca_model.tar"
        write_deca_model(path)
        encoders = load_deca_encoders(path).to(args.device)
    boxes = torch.tensor([[128.0, 136.0, 200.0]]).repeat(args.batch, 1).to(args.device)
    crops = torch.rand(args.batch, 3, 256, 256, device=args.device)

    def timed(fn) -> float:
        fn()  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.repeats

    def stage() -> None:
        with torch.no_grad():
            encoders(cut_crops(crops, boxes))

    def fit_step() -> None:
        pixels = crops.clone().requires_grad_(True)
        codes = encoders(cut_crops(pixels, boxes))
        sum(code.abs().mean() for code in codes.values()).backward()

    forward, step = timed(stage), timed(fit_step)
    print(f"device {args.device}, threads {args.threads}, batch {args.batch}, repeats {args.repeats}")
    print(f"stage: {1000 * forward / args.batch:.0f} ms per frame (both encoders, forward)")
    print(f"fit: {1000 * step:.0f} ms per step of {args.batch} crops (forward and backward into the pixels)")


if __name__ == "__main__":
    main()
