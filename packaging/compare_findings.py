"""Do two findings files (schema forensics-app/findings/1) say the same about the same files?

    python packaging/compare_findings.py DEVELOPMENT.json BUNDLE.json [--tolerance REL]

Images are matched by the SHA-256 of their bytes. For each: the verdict (label, model, text) and every
candidate reading (model, method, score, p-values, threshold, status, attributed) must be equal; numbers
exactly unless --tolerance gives a relative tolerance. Also compared: the models' ONNX hashes (the same model
ran). Prints one line per image and every difference; exit 0 when equal, 3 when anything differs, 2 on bad
input. Standard library only, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

READING_KEYS = ("model", "method", "score", "p_value", "p_real", "threshold", "status", "attributed")


def load(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("schema") != "forensics-app/findings/1":
        raise ValueError(f"{path} is not a findings file (schema forensics-app/findings/1)")
    return doc


def same(a, b, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and tolerance > 0:
        return math.isclose(a, b, rel_tol=tolerance) or (math.isnan(a) and math.isnan(b))
    return a == b


def differences(first: dict, second: dict, tolerance: float) -> tuple[list[str], list[str]]:
    """(one line per image, the differences found)."""
    lines, found = [], []
    onnx = [{m["id"]: m.get("onnx") for m in doc["run"]["models"]} for doc in (first, second)]
    if onnx[0] != onnx[1]:
        found.append(f"the models' ONNX files differ: {onnx[0]} vs {onnx[1]}")
    images = [{i["sha256"]: i for i in doc["images"] if "sha256" in i} for doc in (first, second)]
    for sha in sorted(set(images[0]) | set(images[1])):
        if sha not in images[0] or sha not in images[1]:
            found.append(f"{sha[:12]}: analysed in only one of the files")
            continue
        a, b = images[0][sha], images[1][sha]
        name = Path(a["path"]).name
        for key in ("label", "model", "text"):
            if a["verdict"].get(key) != b["verdict"].get(key):
                found.append(f"{name}: verdict {key} {a['verdict'].get(key)!r} vs {b['verdict'].get(key)!r}")
        if len(a["candidates"]) != len(b["candidates"]):
            found.append(f"{name}: {len(a['candidates'])} vs {len(b['candidates'])} candidate readings")
        for ca, cb in zip(a["candidates"], b["candidates"]):
            for key in READING_KEYS:
                if not same(ca.get(key), cb.get(key), tolerance):
                    found.append(f"{name}: {ca.get('model')}/{ca.get('method')} {key} {ca.get(key)!r} vs {cb.get(key)!r}")
        top = a["candidates"][0] if a["candidates"] else {}
        lines.append(f"{name:<32} {a['verdict']['label']:<15} {str(a['verdict'].get('model')):<8} "
                     f"score {top.get('score')!r} / {b['candidates'][0].get('score')!r}" if top else name)
    return lines, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative tolerance for numbers (default exact)")
    args = parser.parse_args(argv)
    try:
        first, second = load(Path(args.first)), load(Path(args.second))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lines, found = differences(first, second, args.tolerance)
    for line in lines:
        print(line)
    for difference in found:
        print(f"DIFFERS: {difference}")
    if found:
        print(f"{len(found)} difference(s)")
        return 3
    print(f"SAME: {len(lines)} images, identical verdicts and readings"
          + ("" if args.tolerance == 0 else f" (relative tolerance {args.tolerance:g})"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
