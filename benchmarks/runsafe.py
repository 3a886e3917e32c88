"""What checking a run folder costs: sampling with and without the CRC-32C checksum per chunk, the
chunk-existence check that every read and resume does, and reading the latents checked vs raw, on the same
toy runs in the same process (the baseline, no checksum and no check, is measured in the same run).

    python benchmarks/runsafe.py [--n 30000] [--chunk 256] [--repeats 3]

Writes benchmarks/results/runsafe.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
from pathlib import Path

from _common import RESULTS, machine, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from tlgan import sample as S
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    gen, ext = load_generator("toy-linear", "cpu"), load_extractor("toy-linear", "cpu")
    out: dict = {"machine": machine(), "n": args.n, "chunk": args.chunk, "z_dim": gen.z_dim,
                 "chunks": -(-args.n // args.chunk)}
    with_crc = S._codecs
    codecs = {"plain": lambda: {}, "crc32c": with_crc}
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict = {}
        times: dict[str, list[float]] = {k: [] for k in codecs}
        S.sample(Path(tmp) / "warm", gen, ext, args.n, chunk=args.chunk, progress=False)  # warm-up, not timed
        for rep in range(args.repeats):  # alternate, so a change of load hits both alike
            for name, make in codecs.items():
                S._codecs = make  # type: ignore[assignment]
                folder = Path(tmp) / f"{name}-{rep}"
                times[name].append(timed(functools.partial(S.sample, folder, gen, ext, args.n, chunk=args.chunk, progress=False)))
                runs[name] = S.open_run(folder)
        S._codecs = with_crc  # type: ignore[assignment]
        for name, ts in times.items():
            out[f"sample_seconds_{name}"] = statistics.median(ts)
        run = runs["crc32c"]
        out["check_chunks_seconds"] = statistics.median(timed(lambda: run.missing_rows("z")) for _ in range(5))
        out["open_run_seconds"] = statistics.median(timed(lambda: S.open_run(run.path)) for _ in range(5))
        reads = {"checked_crc32c": lambda: runs["crc32c"].noise, "checked_plain": lambda: runs["plain"].noise,
                 "raw_plain": lambda: runs["plain"]._array("z")[:]}
        read_times: dict[str, list[float]] = {k: [] for k in reads}
        for _ in range(5):
            for k, fn in reads.items():
                read_times[k].append(timed(fn))
        for k, ts in read_times.items():
            out[f"read_z_{k}_seconds"] = statistics.median(ts)
    out["ratio_sample_crc32c_to_plain"] = out["sample_seconds_crc32c"] / out["sample_seconds_plain"]
    out["ratio_read_checked_crc32c_to_raw_plain"] = out["read_z_checked_crc32c_seconds"] / out["read_z_raw_plain_seconds"]
    out["note"] = ("medians of alternating repeats on a 2-core machine shared with other jobs (see load_average_1min):"
                   " noisy; rerun on a quiet machine")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runsafe.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
