"""`forensics-app batch` (Ray Data) against `analyze`: throughput on the same images and candidates, and
memory over thousands of files.

    python benchmarks/batch.py --home DIR [--images 48] [--sides 64,192] [--repeats 2] [--model ID ...]
                               [--memory-images 5000] [--gpu-actors 1,2,4] [--json OUT]

Throughput: crops of held-out photos (Set14 and scikit-image's) are written as PNGs; `analyze DIR` and
`batch DIR --out NEW` run as the user runs them (fresh processes), alternately, ``--repeats`` times; the
ratio batch/analyze uses the medians. Both analyse with every candidate installed in --home (or the
--model ones) and the default method (AEDR).

Memory: ``--memory-images`` small PNGs (64 px, each its own bytes) go through one batch while the
proportional set size (PSS: shared pages split between the processes that map them, so Ray's object
store counts once) of the batch's whole process tree (driver, Ray's servers, intake workers, actors) is
sampled every half second, against the number of findings written so far. Flat memory means the
PSS after 90% of the files is about the PSS after 10%.

GPU (``--gpu-actors 1,2,4``, for a machine with GPUs; not run by default): the batch's images/s with
--provider cuda and that many actors (one GPU each, so at most as many as the machine has), on
``--gpu-side`` crops, with analyze on one GPU for comparison.

Each run's rate is given twice: "steady", from its first result to its last (what an archive of
100,000 files sees), and "end to end", start-up included (Ray's start and the actors' model loading
cost the batch about ten seconds on this machine, which a short run does not win back).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import crops, held_out_photos, print_table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def write_images(folder: Path, count: int, side: int, seed: int = 0) -> Path:
    """`count` distinct crops (each file its own bytes: crops repeat after a while, so one pixel differs)."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = crops(held_out_photos(), side, max(1, count // 14 + 1), seed)
    for i in range(count):
        rgb = pool[i % len(pool)].copy()
        rgb[0, 0, 0] = (int(rgb[0, 0, 0]) + i // len(pool)) % 256
        Image.fromarray(rgb).save(folder / f"img{i:06d}.png")
    return folder


def command(home: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "forensics_app", "--home", home, *args]


def timed_run(cmd: list[str], results: Path | None) -> dict:
    """Run a command to its end, noting when results appear: from analyze's printed lines (one per image,
    flushed), or from the lines of the batch's findings.jsonl (`results`). Returns the end-to-end rate
    (start-up included) and the steady rate (from the first results to the last: start-up excluded)."""
    import threading

    start = time.perf_counter()
    run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[tuple[float, int]] = []  # (seconds, results so far)
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.append(run.stderr.read()), daemon=True).start()
    if results is None:
        count = 0
        for line in run.stdout:
            if line.startswith("img"):
                count += 1
                seen.append((time.perf_counter() - start, count))
    else:
        threading.Thread(target=run.stdout.read, daemon=True).start()
        while run.poll() is None:
            n = count_lines(results)
            if n and (not seen or seen[-1][1] != n):
                seen.append((time.perf_counter() - start, n))
            time.sleep(0.05)
        n = count_lines(results)
        if n and (not seen or seen[-1][1] != n):
            seen.append((time.perf_counter() - start, n))
    run.wait()
    wall = time.perf_counter() - start
    if run.returncode != 0 or not seen:
        sys.exit(f"{' '.join(cmd)} failed ({run.returncode}):\n{''.join(stderr)[-4000:]}")
    (t0, n0), (t1, n1) = seen[0], seen[-1]
    return {"wall_s": wall, "first_result_s": t0, "end_to_end": n1 / wall,
            "steady": (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")}


def load_average() -> float:
    return os.getloadavg()[0]


def throughput(home: str, images: Path, models: list[str], repeats: int, tmp: Path,
               extra: tuple[str, ...] = (), gpu_analyze: bool = False) -> dict:
    model_args = [a for m in models for a in ("--model", m)]
    runs: dict[str, list[dict]] = {"analyze": [], "batch": []}
    for r in range(repeats):
        for name in ("batch", "analyze") if r % 2 else ("analyze", "batch"):  # alternate who goes first
            if name == "analyze":
                cmd = command(home, "analyze", str(images), *model_args,
                              *(("--provider", "cuda") if gpu_analyze else ()))
                runs[name].append(timed_run(cmd, None))
            else:
                out = tmp / f"out-{time.monotonic_ns()}"
                cmd = command(home, "batch", str(images), "--out", str(out), *model_args, *extra)
                runs[name].append(timed_run(cmd, out / "findings.jsonl"))
            runs[name][-1]["load_average_1min"] = load_average()
    summary = {f"{name}_{rate}": statistics.median(run[rate] for run in runs[name])
               for name in runs for rate in ("end_to_end", "steady", "first_result_s")}
    return {"runs": runs, **summary, "ratio_end_to_end": summary["batch_end_to_end"] / summary["analyze_end_to_end"],
            "ratio_steady": summary["batch_steady"] / summary["analyze_steady"],
            "load_average_1min": [run["load_average_1min"] for name in runs for run in runs[name]]}


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def pss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def memory(home: str, count: int, models: list[str], tmp: Path) -> dict:
    images = write_images(tmp / "memory-images", count, 64, seed=1)
    out = tmp / "memory-out"
    cmd = command(home, "batch", str(images), "--out", str(out), *[a for m in models for a in ("--model", m)])
    start = time.perf_counter()
    run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []  # (seconds, findings written, PSS of the tree, PSS of the driver)
    while run.poll() is None:
        samples.append((time.perf_counter() - start, count_lines(out / "findings.jsonl"),
                        pss_bytes(process_tree(run.pid)), pss_bytes([run.pid])))
        time.sleep(0.5)
    if run.returncode != 0:
        sys.exit(f"memory batch failed ({run.returncode}): {run.stderr.read()[-4000:]}")
    seconds = time.perf_counter() - start

    def at(fraction: float) -> tuple[float, float]:
        """Median PSS (tree, driver) over the samples taken while the findings were near this fraction."""
        near = [s for s in samples if abs(s[1] / count - fraction) <= 0.05] or samples[-1:]
        return (statistics.median(s[2] for s in near) / 2**20, statistics.median(s[3] for s in near) / 2**20)

    return {"images": count, "seconds": seconds, "images_per_s": count / seconds,
            "pss_mb_at": {f"{p:.0%}": at(p) for p in (0.1, 0.5, 0.9)},
            "peak_pss_mb": max(s[2] for s in samples) / 2**20, "samples": len(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="application folder with the candidates installed")
    parser.add_argument("--model", action="append", default=[], help="only these candidates (default: all)")
    parser.add_argument("--images", type=int, default=48, help="images per throughput run")
    parser.add_argument("--sides", default="64,192", help="crop sides of the throughput runs, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each command per side (medians)")
    parser.add_argument("--memory-images", type=int, default=5000, help="0 skips the memory run")
    parser.add_argument("--memory-model", action="append", default=[],
                        help="candidates of the memory run (default: those of the throughput runs)")
    parser.add_argument("--gpu-actors", default="", help="GPU mode: actor counts to run, e.g. 1,2,4")
    parser.add_argument("--gpu-side", type=int, default=512)
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()

    results: dict = {"cpus": os.cpu_count(), "home": args.home, "models": args.model or "all installed"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for side in (int(s) for s in args.sides.split(",") if s):
            images = write_images(tmp / f"images-{side}", args.images, side)
            r = throughput(args.home, images, args.model, args.repeats, tmp)
            results[f"throughput_{side}px"] = r
            rows.append([f"{args.images} x {side} px", r["analyze_steady"], r["batch_steady"], r["ratio_steady"],
                         r["analyze_end_to_end"], r["batch_end_to_end"], r["ratio_end_to_end"],
                         f"{r['analyze_first_result_s']:.1f} / {r['batch_first_result_s']:.1f}",
                         f"{min(r['load_average_1min']):.1f}-{max(r['load_average_1min']):.1f}"])
        if rows:
            print_table(f"Throughput on {os.cpu_count()} CPUs in images/s, medians of {args.repeats} (candidates: "
                        f"{', '.join(args.model) or 'all installed'}); steady = from the first result to the "
                        "last, end to end = start-up included",
                        ["images", "analyze steady", "batch steady", "ratio", "analyze e2e", "batch e2e", "ratio",
                         "1st result s (a / b)", "load avg"], rows)
        if args.memory_images:
            m = memory(args.home, args.memory_images, args.memory_model or args.model, tmp)
            results["memory"] = m
            print_table(f"Memory of one batch over {m['images']} images of 64 px ({m['images_per_s']:.1f} images/s): "
                        "PSS in MB of the whole process tree (driver alone in brackets)",
                        ["findings written", "PSS tree (driver)"],
                        [[k, f"{v[0]:.0f} ({v[1]:.0f})"] for k, v in m["pss_mb_at"].items()]
                        + [["peak", f"{m['peak_pss_mb']:.0f}"]])
        if args.gpu_actors:
            images = write_images(tmp / "images-gpu", args.images, args.gpu_side)
            gpu_rows = []
            for actors in (int(a) for a in args.gpu_actors.split(",")):
                r = throughput(args.home, images, args.model, 1, tmp,
                               extra=("--provider", "cuda", "--actors", str(actors)), gpu_analyze=True)
                results[f"gpu_{actors}_actors"] = r
                gpu_rows.append([actors, r["analyze_steady"], r["batch_steady"], r["ratio_steady"],
                                 r["batch_end_to_end"]])
            print_table(f"GPU: {args.images} images of {args.gpu_side} px (images/s)",
                        ["actors", "analyze steady (1 GPU)", "batch steady", "ratio", "batch e2e"], gpu_rows)
    write_json(args.json, json.loads(json.dumps(results)))


if __name__ == "__main__":
    main()
