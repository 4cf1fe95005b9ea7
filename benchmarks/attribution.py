"""Attribution accuracy and speed of AEDR (all score forms) and the single-loss baseline.

    python benchmarks/attribution.py [--home DIR] [--crops-per-image 3] [--side 128] [--json OUT]

Accuracy is measured on the held-out split only (Set14 + scikit-image photos; the shipped calibration
uses CBSD68). Positives: crops decoded by TAEF2 (decode(encode(crop)), saved as 8-bit). Negatives:
the real crops; outputs of the other autoencoders installed in the zoo (the demonstration models:
"made by another, often blurrier, model"); Stable Diffusion 1/2 outputs (out of zoo). Decision
rates use the installed calibration at the default false-attribution rate. Speed compares the
onnxruntime path with an eager-torch implementation of the same computation in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ALPHA, auc, crops, generated_images, held_out_photos, print_table, statuses_alone, write_json  # noqa: E402

from forensics_app.core.calibrate import jpeg_roundtrip, to_uint8  # noqa: E402
from forensics_app.core.imageprep import TilingSettings  # noqa: E402
from forensics_app.core.jobs import NEVER_CANCELLED  # noqa: E402
from forensics_app.core.methods.aedr import METHOD as AEDR, SCORE_FORMS, score_form  # noqa: E402
from forensics_app.core.pipeline import load_model_calibrations  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

CANDIDATE = "taef2"


def components_of(images, model) -> list[dict]:
    return [AEDR.components(im.astype(np.float32) / 255.0, model, TilingSettings(), NEVER_CANCELLED)[0] for im in images]


def accuracy(zoo: Zoo, side: int, per_image: int, seed: int) -> dict:
    candidate = OnnxAutoencoder(zoo.installed(CANDIDATE))
    real = crops(held_out_photos(), side, per_image, seed)
    own = [to_uint8(candidate.reconstruct(c / 255.0)) for c in real]
    sets = {"real": real, "taef2": own,
            "real_jpeg90": [jpeg_roundtrip(c, 90) for c in real], "taef2_jpeg90": [jpeg_roundtrip(c, 90) for c in own]}
    for other_id in zoo.installed_ids():
        if other_id != CANDIDATE:
            other = OnnxAutoencoder(zoo.installed(other_id))
            sets[f"other:{other_id}"] = [to_uint8(other.reconstruct(c / 255.0)) for c in real]
    sets["sd1+sd2"] = crops(generated_images("sd1") + generated_images("sd2"), side, 1, seed)
    comps = {name: components_of(images, candidate) for name, images in sets.items()}

    forms = dict(SCORE_FORMS, single_loss=lambda c: c["L1"])
    negatives = [n for n in comps if n not in ("taef2", "taef2_jpeg90")]
    rows, table = [], {}
    for form, fn in forms.items():
        pos, pos_j = [fn(c) for c in comps["taef2"]], [fn(c) for c in comps["taef2_jpeg90"]]
        row = {"real vs taef2": auc([fn(c) for c in comps["real"]], pos),
               "real vs taef2 (JPEG q90)": auc([fn(c) for c in comps["real_jpeg90"]], pos_j)}
        for n in negatives:
            if n.startswith("other:") or n == "sd1+sd2":
                row[f"{n} vs taef2"] = auc([fn(c) for c in comps[n]], pos)
        table[form] = row
        rows.append([form + (" (product)" if form == score_form(candidate.manifest) else "")] + list(row.values()))
    header = ["score form"] + list(next(iter(table.values())).keys())
    print_table(f"AUC, {len(real)} crops of {side}x{side} (held-out photos)", header, rows)

    decisions = decision_rates(zoo, comps, score_form(candidate.manifest))
    return {"auc": table, "decision_rates": decisions, "crops": len(real), "side": side}


def decision_rates(zoo: Zoo, comps: dict, form: str) -> dict:
    calibrations, source = load_model_calibrations(zoo.installed(CANDIDATE))
    cal = calibrations.get("aedr")
    if cal is None or cal.parameters.get("score_form") != form:
        print(f"\n(no matching aedr calibration installed: {source}; decision rates skipped)")
        return {}
    fn = SCORE_FORMS[form]
    out = {}
    for name, items in comps.items():
        statuses = statuses_alone(cal, [fn(c) for c in items])
        out[name] = {s: statuses.count(s) / len(statuses) for s in ("consistent", "undecided", "rejected")}
    rows = [[n, r["consistent"], r["undecided"], r["rejected"]] for n, r in out.items()]
    print_table(f"Decisions for candidate {CANDIDATE} at alpha={ALPHA} (calibration: {source})",
                ["images", "attributed", "undecided", "rejected"], rows)
    return out


class TorchEagerAutoencoder:
    """The same encode/decode interface as OnnxAutoencoder, on the torch modules the ONNX came from:
    AEDR then runs the identical computation, only the network runtime differs."""

    provider = "torch-eager"

    def __init__(self, model):
        from forensics_app.core.zoo.torch_models import torch_autoencoder

        self.model, self.id, self.manifest = model, model.id, model.manifest
        self._encoder, self._decoder = torch_autoencoder(model)

    def _run(self, module, array):
        import torch

        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(array, np.float32))).numpy()

    def encode(self, image, cancel=NEVER_CANCELLED):
        return self._run(self._encoder, image)

    def decode(self, latent, cancel=NEVER_CANCELLED):
        return self._run(self._decoder, latent)

    reconstruct = OnnxAutoencoder.reconstruct


def _speed_worker(home: str, side: int, engine: str, repeats: int, queue) -> None:
    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    image = rng.random((side, side, 3), dtype=np.float32)
    model = Zoo(Path(home)).installed(CANDIDATE)
    tiling = TilingSettings()  # the product default: both sizes go through in one pass
    ae = OnnxAutoencoder(model) if engine == "onnxruntime" else TorchEagerAutoencoder(model)
    run = lambda: AEDR.run(image, ae, tiling, NEVER_CANCELLED)
    run()  # warm-up: session creation and first-call allocations are not per-image cost
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    seconds = (time.perf_counter() - start) / repeats
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def speed(home: Path, sides: list[int], repeats: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out, rows = {}, []
    for side in sides:
        for engine in ("onnxruntime", "torch-eager"):
            queue = ctx.Queue()
            proc = ctx.Process(target=_speed_worker, args=(str(home), side, engine, repeats, queue))
            proc.start()
            seconds, peak_mb = queue.get()
            proc.join()
            out[f"{engine}@{side}"] = {"seconds_per_image": seconds, "peak_rss_mb": peak_mb}
        ratio = out[f"onnxruntime@{side}"]["seconds_per_image"] / out[f"torch-eager@{side}"]["seconds_per_image"]
        out[f"ratio@{side}"] = ratio
        rows.append([f"{side}x{side}", out[f"onnxruntime@{side}"]["seconds_per_image"],
                     out[f"torch-eager@{side}"]["seconds_per_image"], ratio,
                     out[f"onnxruntime@{side}"]["peak_rss_mb"], out[f"torch-eager@{side}"]["peak_rss_mb"]])
    print_table("AEDR seconds per image per candidate (CPU, same run; peak RSS of a fresh process)",
                ["size", "ORT s", "torch s", "ORT/torch", "ORT peak MB", "torch peak MB"], rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="app home with taef2 (and other autoencoders) installed")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--crops-per-image", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    zoo = Zoo(Path(args.home) if args.home else None)
    result = {} if args.skip_accuracy else {"accuracy": accuracy(zoo, args.side, args.crops_per_image, args.seed)}
    if not args.skip_speed:
        result["speed"] = speed(zoo.home, [int(s) for s in args.sizes.split(",")], args.repeats)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
