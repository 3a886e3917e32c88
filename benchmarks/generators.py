"""Benchmark of a user's StyleGAN2 at 256 px (issue 9): images/s of `sample` beside the generator alone.

The network is the StyleGAN2 fixture's architecture (z 64, w 64, 2 mapping
layers, channel_base 512, channel_max 64) at 256 px with random weights
(fine for timing), wrapped as a user's checkpoint would be, in the w space.
`sample` renders, labels with the `faces` extractor (which finds the face
first at this size) and stores; its rate is shown beside the generator's
alone and the extractor's alone, measured in the same run.

Usage: python benchmarks/generators.py [--n 64] [--device cpu]
Writes benchmarks/results/generators.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from _common import RESULTS, machine, timed
from tlgan.extractors import load_extractor
from tlgan.generators.checkpoints import CheckpointGenerator
from tlgan.generators.families import get_family
from tlgan.generators.stylegan2 import generator_from_nvlabs_kwargs
from tlgan.sample import sample

KWARGS = {"z_dim": 64, "w_dim": 64, "c_dim": 0, "img_resolution": 256, "img_channels": 3,
          "mapping_kwargs": {"num_layers": 2},
          "synthesis_kwargs": {"channel_base": 512, "channel_max": 64, "num_fp16_res": 4, "conv_clamp": 256}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = generator_from_nvlabs_kwargs(KWARGS)
    gen = CheckpointGenerator(net, get_family("stylegan2"), "sg2-256-random", space="w", device=args.device)
    ext = load_extractor("faces", args.device)
    codes = gen.sample(args.n, 0)
    gen.render(codes[:4])  # warm up
    t_gen = min(timed(lambda: gen.render(codes)) for _ in range(2))
    images = gen.render(codes)
    ext(images[:4])
    t_ext = timed(lambda: ext(images))
    with tempfile.TemporaryDirectory() as tmp:
        t_sample = timed(lambda: sample(Path(tmp) / "run", gen, ext, args.n, chunk=gen.batch_size, progress=False))
    rates = {"generator_alone": args.n / t_gen, "faces_extractor_alone": args.n / t_ext,
             "sample": args.n / t_sample}
    bound = 1 / (1 / rates["generator_alone"] + 1 / rates["faces_extractor_alone"])
    out = {"machine": machine(), "device": args.device, "n": args.n, "resolution": 256, "space": "w",
           "batch_size": gen.batch_size, "images_per_s": rates, "stage_bound": bound,
           "sample_vs_generator": rates["sample"] / rates["generator_alone"],
           "sample_vs_bound": rates["sample"] / bound}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generators.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
