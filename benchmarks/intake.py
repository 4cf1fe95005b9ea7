"""Evidence intake throughput and memory.

    python benchmarks/intake.py [--json OUT]

1. Throughput (files/s, MB/s) of load_evidence (hash + content sniffing + safe decode + provenance)
   over the real photos in ../shared/images/real.
2. Memory over a folder of 1,000 generated files (PNG and JPEG, 256-512 px) walked and loaded one by
   one, as a batch does: peak RSS is sampled every 100 files and must stay flat (no accumulation).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, print_table, write_json  # noqa: E402

from forensics_app.core.evidence import iter_image_files, load_evidence  # noqa: E402


def rss_mb() -> float:
    """Current resident memory (not the peak), from /proc: shows growth, not a single spike."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput() -> dict:
    files, _ = iter_image_files([SHARED / "images" / "real"])
    load_evidence(files[0])  # warm-up: decoder plugins load on first use
    start, size = time.perf_counter(), 0
    for path in files:
        size += load_evidence(path).size_bytes
    seconds = time.perf_counter() - start
    return {"files": len(files), "seconds": seconds, "files_per_s": len(files) / seconds,
            "mb_per_s": size / 2**20 / seconds}


def memory_over_folder(count: int) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(count):
            side = int(rng.integers(256, 513))
            rgb = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(folder / (f"{i:04d}.png" if i % 2 else f"{i:04d}.jpg"))
        files, _ = iter_image_files([folder])
        samples = []
        start = time.perf_counter()
        for i, path in enumerate(files):
            load_evidence(path)
            if i % 100 == 0:
                samples.append(rss_mb())
        seconds = time.perf_counter() - start
    return {"files": len(files), "files_per_s": len(files) / seconds, "rss_mb_every_100": samples,
            "rss_growth_mb": samples[-1] - samples[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = {"throughput": throughput(), "memory": memory_over_folder(args.files)}
    t, m = result["throughput"], result["memory"]
    print_table("Evidence intake", ["measure", "value"], [
        ["real photos loaded", t["files"]], ["files/s (real photos)", t["files_per_s"]],
        ["MB/s (real photos)", t["mb_per_s"]], ["files/s (1,000 generated)", m["files_per_s"]],
        ["RSS every 100 files (MB)", " ".join(f"{v:.0f}" for v in m["rss_mb_every_100"])],
        ["RSS growth after the first 100 (MB)", m["rss_growth_mb"]]])
    write_json(args.json, result)


if __name__ == "__main__":
    main()
