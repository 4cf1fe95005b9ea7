"""Time to write the findings report (PDF and JSON) for a batch of evidence items.

    python benchmarks/report_speed.py [--home DIR] [--items 50] [--distinct 5] [--side 512]
                                      [--methods aedr,reconstruction] [--json OUT]

``--distinct`` crops of held-out photos are analysed with the installed models (taef2 is installed from
../shared/zoo-mirror into a temporary home if --home has none); their findings, maps included, are then
reused for ``--items`` evidence files, each its own PNG with its own SHA-256 (a one-pixel change), so
the report step does its full per-item work: re-hashing the file, decoding a thumbnail, drawing the
maps and histograms, laying out the pages. Only the report step is the measurement; the analysis time
of the distinct crops is printed for scale (the analysis is the expensive part of a real batch).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, crops, held_out_photos, print_table, write_json  # noqa: E402

from forensics_app.core.evidence import sha256_of_file  # noqa: E402
from forensics_app.core.findings import FailedImage  # noqa: E402
from forensics_app.core.pipeline import AnalysisSettings, Engine, analyse_paths  # noqa: E402
from forensics_app.core.report import ReportInput, write_pdf  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="application folder with installed models (default: a temporary one)")
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--distinct", type=int, default=5, help="crops actually analysed")
    parser.add_argument("--side", type=int, default=512, help="crop side in pixels")
    parser.add_argument("--methods", default="aedr,reconstruction")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zoo = Zoo(Path(args.home) if args.home else tmp / "home")
        if not zoo.installed_ids():
            zoo.install("taef2", mirrors=[SHARED / "zoo-mirror"])
        distinct = crops(held_out_photos(), args.side, 1, seed=0)[:args.distinct]
        analysed = []
        for i, rgb in enumerate(distinct):
            analysed.append(tmp / f"distinct{i}.png")
            Image.fromarray(rgb).save(analysed[-1])
        engine = Engine(zoo, AnalysisSettings(methods=tuple(args.methods.split(","))))
        start = time.perf_counter()
        batch = analyse_paths(engine, analysed)
        analysis_s = time.perf_counter() - start
        done = [r for r in batch.results if not isinstance(r, FailedImage)]
        findings = []
        for i in range(args.items):
            rgb = distinct[i % len(done)].copy()
            rgb[0, 0, 0] ^= i // len(done)  # every item its own bytes and hash
            path = tmp / f"item{i:03d}.png"
            Image.fromarray(rgb).save(path)
            findings.append(replace(done[i % len(done)], path=path, sha256=sha256_of_file(path)))
        report = ReportInput({"case_name": "Benchmark", "examiner": "benchmarks/report_speed.py"}, findings,
                             [], engine.run_info(), engine.calibrations_in_use())

        start = time.perf_counter()
        written = write_pdf(report, tmp / "report.pdf")
        pdf_s = time.perf_counter() - start
        start = time.perf_counter()
        (tmp / "findings.json").write_text(json.dumps(report.document(), indent=2), encoding="utf-8")
        json_s = time.perf_counter() - start
        pdf_mb = (tmp / "report.pdf").stat().st_size / 1e6
        json_mb = (tmp / "findings.json").stat().st_size / 1e6

    maps = sum(len(f.maps) for f in findings)
    results = {"items": len(findings), "distinct_analysed": len(done), "side": args.side, "methods": args.methods,
               "maps": maps, "calibrated_readings": len(report.calibrations), "pages": written["pages"],
               "pdf_seconds": pdf_s, "pdf_seconds_per_item": pdf_s / max(1, len(findings)), "pdf_mb": pdf_mb,
               "json_seconds": json_s, "json_mb": json_mb, "analysis_seconds": analysis_s,
               "providers": engine.run_info()["providers"]}
    print_table(f"Report generation, {len(findings)} items ({args.side} px crops, {args.methods}; "
                f"{maps} heat maps, {len(report.calibrations)} calibrated method(s))",
                ["step", "seconds", "per item", "size (MB)", "pages"],
                [["PDF", pdf_s, pdf_s / max(1, len(findings)), pdf_mb, written["pages"]],
                 ["JSON", json_s, json_s / max(1, len(findings)), json_mb, "-"],
                 [f"(analysis of {len(done)} distinct crops, for scale)", analysis_s, analysis_s / max(1, len(done)),
                  "-", "-"]])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
