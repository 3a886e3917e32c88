"""What checking a run folder costs: the chunk-existence check that every read and resume does, and reading
the latents with and without the CRC-32C checksum per chunk, on the same toy run in the same process.

    python benchmarks/runsafe.py [--n 200000] [--chunk 256] [--repeats 5]

Writes benchmarks/results/runsafe.json. The baseline (no checksum, no check) is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _common import RESULTS, machine, timed


def best(fn, repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from tlgan import sample as S
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    gen, ext = load_generator("toy-linear", "cpu"), load_extractor("toy-linear", "cpu")
    out: dict = {"machine": machine(), "n": args.n, "chunk": args.chunk, "z_dim": gen.z_dim}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, codecs in (("crc32c", S._codecs), ("plain", lambda: {})):
            S._codecs = codecs  # type: ignore[assignment]
            t = timed(lambda: S.sample(Path(tmp) / name, gen, ext, args.n, chunk=args.chunk, progress=False))
            out[f"sample_seconds_{name}"] = t
            runs[name] = S.open_run(Path(tmp) / name)
        run = runs["crc32c"]
        out["chunks"] = -(-args.n // args.chunk)
        out["check_chunks_seconds"] = best(lambda: run.missing_rows("z"), args.repeats)
        out["open_run_seconds"] = best(lambda: S.open_run(run.path), args.repeats)
        out["read_z_checked_crc32c_seconds"] = best(lambda: runs["crc32c"].noise, args.repeats)
        out["read_z_checked_plain_seconds"] = best(lambda: runs["plain"].noise, args.repeats)
        out["read_z_raw_plain_seconds"] = best(lambda: runs["plain"]._array("z")[:], args.repeats)
    out["ratio_checked_crc32c_to_raw_plain"] = out["read_z_checked_crc32c_seconds"] / out["read_z_raw_plain_seconds"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runsafe.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
