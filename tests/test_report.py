"""The findings report: PDF content and rendering, JSON round trip, verification, CLI glue."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from forensics_app.cli import EXIT_OK, EXIT_SOME_FAILED, main
from forensics_app.core.calibration import Calibration, save_calibrations
from forensics_app.core import verdict as verdict_module
from forensics_app.core.colormaps import colourise, map_display_range
from forensics_app.core.findings import FailedImage, Verdict, p_value_text
from forensics_app.core.methods import get_method
from forensics_app.core.pipeline import AnalysisSettings, Engine, analyse_paths
from forensics_app.core.report import ReportInput, write_pdf
from forensics_app.core.provenance import CLAIMS_DISCLAIMER
from forensics_app.core.report.figures import colour_bar, heatmap_image, log_ticks
from forensics_app.core.report.pdf import VERDICT_TITLES, decision_rule
from forensics_app.core.report.verify import verify_document
from forensics_app.core.zoo.store import Zoo

from conftest import real_crop, save_png, taef2_parameters

METHODS = ("aedr", "reconstruction")


@pytest.fixture(scope="module")
def report_zoo(installed_zoo, tmp_path_factory):
    """A copy of the session zoo with a small synthetic calibration, so readings get p-values and the
    shared zoo stays untouched."""
    home = tmp_path_factory.mktemp("report-home")
    shutil.copytree(installed_zoo.home / "zoo", home / "zoo")
    zoo = Zoo(home)
    rng = np.random.default_rng(0)
    calibrations = []
    for name, own, real in (("aedr", 1.2, 4.0), ("reconstruction", 1e-4, 3e-3)):
        method = get_method(name)
        calibrations.append(Calibration(
            "taef2", name, method.version, taef2_parameters(method), own * np.exp(rng.normal(0, 0.2, 60)),
            real * np.exp(rng.normal(0, 0.5, 999)), {"real": {"samples": 999}, "plan": {"seed": 0}}))
    save_calibrations(zoo.installed("taef2").calibration_folder() / "calibration.json", calibrations)
    return zoo


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evidence")
    paths = [save_png(real_crop("baboon.png", side=64), folder / "baboon.png"),
             save_png(real_crop("lenna.png", side=64, y=100, x=100), folder / "lenna.png")]
    Image.fromarray(real_crop("barbara.png", side=64)).save(folder / "barbara.jpg", quality=80)
    return [*paths, folder / "barbara.jpg"]


@pytest.fixture(scope="module")
def engine(report_zoo):
    return Engine(report_zoo, AnalysisSettings(methods=METHODS, models=("taef2",)))


@pytest.fixture(scope="module")
def report(engine, evidence, tmp_path_factory):
    missing = tmp_path_factory.mktemp("gone") / "missing.png"
    batch = analyse_paths(engine, [*evidence, missing])
    findings = [r for r in batch.results if not isinstance(r, FailedImage)]
    return ReportInput({"case_name": "Test case", "examiner": "A. Examiner"}, findings, batch.failures,
                       engine.run_info(), engine.calibrations_in_use())


@pytest.fixture(scope="module")
def pdf(report, tmp_path_factory):
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    return out, write_pdf(report, out)


def page_texts(path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def test_pdf_text_holds_every_hash_verdict_and_failure(report, pdf):
    path, written = pdf
    text = "\n".join(page_texts(path))
    assert len(report.findings) == 3 and len(report.failures) == 1
    for f in report.findings:
        assert f.sha256 in text  # the full hash on one line: searchable
        assert VERDICT_TITLES[f.verdict.label] in text
    assert "missing.png" in text
    for section in ("Summary of findings", "Heat maps", "Calibration: where this image's score lies",
                    "Methods and limitations", "Decision rule", "Known failure modes",
                    "Error rates", "Appendix: reproducibility"):
        assert section in text
    for model in report.run_info["models"]:
        assert model["onnx"]["encoder.onnx"]["sha256"] in text


def test_every_page_has_report_id_and_page_x_of_y(pdf):
    path, written = pdf
    texts = page_texts(path)
    assert written["pages"] == len(texts) > 5
    for number, text in enumerate(texts, 1):
        assert f"Report ID {written['report_id']}" in text
        assert f"page {number} of {len(texts)}" in text


def test_fonts_are_embedded(pdf):
    path, _ = pdf
    for page in PdfReader(path).pages[:3]:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            assert "/FontFile2" in descendant["/FontDescriptor"].get_object(), font["/BaseFont"]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_pages_render_with_pdftoppm(pdf, tmp_path):
    path, written = pdf
    done = subprocess.run(["pdftoppm", "-png", "-r", "20", str(path), str(tmp_path / "page")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert len(list(tmp_path.glob("page*.png"))) == written["pages"]


def test_heat_map_uses_the_shared_colour_map_and_shrinks_for_print():
    values = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    image, value_range = heatmap_image(values, max_side=400)
    assert np.array_equal(np.asarray(image), colourise(values))
    big_values = np.tile(values, (20, 20))
    big, big_range = heatmap_image(big_values, max_side=400)
    assert big.size == (400, 400) and big_range == map_display_range(big_values)  # range of the full map


def test_json_round_trip_keeps_the_report_id_and_edits_change_it(report):
    doc = json.loads(json.dumps(report.document()))
    again = ReportInput.from_document(doc).document()
    assert again["report_id"] == doc["report_id"]
    assert again["images"][0]["candidates"] == doc["images"][0]["candidates"]
    doc["images"][0]["candidates"][0]["score"] *= 0.5
    assert ReportInput.from_document(doc).document()["report_id"] != doc["report_id"]


def test_report_from_json_says_that_maps_are_not_stored(report, tmp_path):
    doc = json.loads(json.dumps(report.document()))
    out = tmp_path / "from-json.pdf"
    write_pdf(ReportInput.from_document(doc), out)
    text = " ".join(" ".join(page_texts(out)).split())
    assert "computed 3 per-pixel maps" in text and "which keeps no arrays" in text
    assert report.findings[0].sha256 in text


def test_a_report_without_the_maps_has_another_identifier_than_the_one_with_them(report, pdf, tmp_path):
    doc = json.loads(json.dumps(report.document()))
    assert pdf[1]["report_id"] == doc["report_id"]  # the PDF with maps and its findings JSON: one identifier
    assert all(len(image["map_sha256"]) == 3 for image in doc["images"] if "sha256" in image)
    back = ReportInput.from_document(doc)
    assert back.document()["report_id"] == doc["report_id"]  # the map hashes survive the JSON round trip
    without_maps = write_pdf(back, tmp_path / "from-json.pdf")
    assert without_maps["report_id"] != doc["report_id"]
    text = " ".join(" ".join(page_texts(tmp_path / "from-json.pdf")).split())
    assert f"so its identifier differs from the findings identifier {doc['report_id']}" in text
    other_maps = json.loads(json.dumps(doc))
    first = other_maps["images"][0]["map_sha256"]
    first[sorted(first)[0]] = "0" * 64
    assert ReportInput.from_document(other_maps).document()["report_id"] != doc["report_id"]


def test_a_p_value_at_its_calibration_floor_is_printed_as_a_bound(report, pdf):
    floor = [(c, c.p_own_text()) for f in report.findings for c in f.candidates
             if c.p_value == 1 / (c.calibration["n_own"] + 1)]
    assert floor, "the fixture has readings above every own-output sample"
    text = "\n".join(page_texts(pdf[0])).replace("\xa0", " ")
    for candidate, printed in floor:
        assert printed.replace("\xa0", " ") == f"≤ {1 / 61:.3g}" and printed.replace("\xa0", " ") in text
    assert p_value_text(1 / 476, 475) == "≤\xa00.00211"  # rounded up: the bound stays true
    assert p_value_text(1 / 476, 475, ascii_only=True) == "<= 0.00211"
    assert p_value_text(0.01, 99) == "≤\xa00.01" and p_value_text(0.0123456, 99) == "0.0123"
    assert p_value_text(None, 99) == "–" and p_value_text(0.2, None) == "0.2"


def test_model_hashes_say_which_file_each_is(pdf):
    text = " ".join(" ".join(page_texts(pdf[0])).split())
    assert "Weights file as published: taef2_encoder.pth" in text
    assert "ONNX file exported from the weights, as run: encoder.onnx" in text
    assert "the ONNX files are what actually ran" in text


def test_the_claims_disclaimer_and_the_decision_rule_are_printed_once(report, pdf):
    text = " ".join(" ".join(page_texts(pdf[0])).split())
    assert text.count("can be stripped or forged") == len(report.findings)  # once per item's provenance section
    assert CLAIMS_DISCLAIMER.split(":")[0] not in text
    first_rule = " ".join(decision_rule(verdict_module.__doc__)[0].split())
    assert text.count(first_rule[:60]) == 1 and "Decision rule (" not in text
    assert "p_real ≤ α and p_own > α" not in text  # the per-item legend no longer restates the rule


@pytest.mark.parametrize("lines", range(0, 72, 4))
def test_a_figure_heading_stays_on_the_page_of_its_first_figure(report, tmp_path, lines):
    """Examiner notes of growing length move the heat maps and histograms down the page, past every
    position at which a page can end."""
    item = report.findings[0]
    notes = {item.sha256: [{"text": f"note line {i}", "author": "E", "created": "2026"} for i in range(lines)]}
    out = tmp_path / "notes.pdf"
    write_pdf(ReportInput(report.case_meta, [item], [], report.run_info, report.calibrations, notes=notes), out)
    for page in page_texts(out):
        if "Heat maps" in page:
            assert "or more" in page  # the end value of a heat map's colour bar
        if "Calibration: where this image's score lies" in page:
            assert "score (log scale" in page


def test_colour_bar_label_has_a_line_of_its_own():
    from reportlab.graphics.shapes import String

    drawing = colour_bar((0.0, 0.31), 150, label="absolute pixel difference")
    heights = {s.text: s.y for s in drawing.contents if isinstance(s, String)}
    assert heights["absolute pixel difference"] < heights["0"] == heights["0.31 or more"]


@pytest.mark.parametrize("lo, hi", [(0.9, 3.5), (0.9, 2.5), (1.08, 60), (8e-5, 0.012), (1.2, 1.5), (1e-12, 1e3)])
def test_histogram_log_axis_has_readable_ticks_over_the_data(lo, hi):
    ticks = log_ticks(lo, hi)
    assert 4 <= len(ticks) <= 8 and all(lo <= t <= hi for t in ticks) and ticks == sorted(ticks)


def test_engine_is_bit_identical_on_cpu(engine, evidence):
    first, second = engine.analyse_file(evidence[0]), engine.analyse_file(evidence[0])
    assert [c.score.hex() for c in first.candidates] == [c.score.hex() for c in second.candidates]
    assert all(np.array_equal(first.maps[k], second.maps[k]) for k in first.maps)


def test_verify_passes_untouched_and_reports_a_changed_evidence_file(report_zoo, engine, tmp_path, capsys):
    paths = [save_png(real_crop("bridge.png", side=64), tmp_path / "bridge.png"),
             save_png(real_crop("baboon.png", side=64, y=64), tmp_path / "baboon.png")]
    batch = analyse_paths(engine, paths)
    doc = ReportInput({"case_name": "v"}, batch.results, [], engine.run_info(), engine.calibrations_in_use()).document()
    findings_json = tmp_path / "findings.json"
    findings_json.write_text(json.dumps(doc), encoding="utf-8")
    home = str(report_zoo.home)
    assert main(["--home", home, "report", "verify", str(findings_json)]) == EXIT_OK

    rgb = np.asarray(Image.open(paths[1])).copy()
    rgb[0, 0] ^= 1  # one bit of one pixel
    Image.fromarray(rgb).save(paths[1])
    capsys.readouterr()
    assert main(["--home", home, "report", "verify", str(findings_json)]) == EXIT_SOME_FAILED
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("DIFFERS")]
    assert any("evidence SHA-256" in line and "baboon.png" in line for line in lines)
    assert not any("bridge.png" in line for line in lines)


def test_verify_reports_an_edited_findings_file(report_zoo, report):
    doc = json.loads(json.dumps(report.document()))
    doc["images"] = doc["images"][:1]
    doc["images"][0]["candidates"][0]["score"] += 1.0
    whats = {d.what.split(" (")[0] for d in verify_document(doc, report_zoo).differences}
    assert "content SHA-256" in whats and "taef2/aedr score" in whats


def test_verify_checks_the_calibrations_also_when_the_evidence_is_missing(report_zoo, report):
    doc = json.loads(json.dumps(report.document()))
    doc["images"] = [dict(image, path=image["path"] + ".moved") for image in doc["images"] if "sha256" in image]
    differences = verify_document(doc, report_zoo).differences
    assert {d.what for d in differences if d.item.endswith(".moved")} == {"evidence file"}
    assert not [d for d in differences if d.item.startswith("calibration")]  # installed and unchanged


@pytest.mark.parametrize("edit, what", [
    (lambda d: d["images"][0]["metadata"].update(declares_ai=True), "metadata declares_ai"),
    (lambda d: d["images"][0]["candidates"][0]["calibration"].update(n_real=5000), "calibration n_real"),
    (lambda d: d["images"][0]["candidates"][0].update(model_name="Another generator"), "model_name"),
    (lambda d: d["run"]["models"][0].update(display_name="Another generator"), "models[0] display_name"),
    (lambda d: d["run"]["methods"][0].update(title="Another method"), "methods[0] title"),
])
def test_verify_finds_every_edited_field_even_with_the_content_hash_recomputed(report_zoo, report, edit, what):
    from forensics_app.core.report_json import content_sha256

    doc = json.loads(json.dumps(report.document()))
    doc["images"] = doc["images"][:1]
    doc["content_sha256"] = content_sha256(doc)
    assert verify_document(doc, report_zoo).identical
    edit(doc)
    doc["content_sha256"] = content_sha256(doc)  # a careful forger recomputes the hash
    differences = verify_document(doc, report_zoo).differences
    assert [d.what for d in differences if what in d.what], [d.line() for d in differences]


def test_report_make_from_a_case_file_has_maps_and_notes(report_zoo, engine, evidence, tmp_path, capsys):
    from forensics_app.core.case import Case, analyse_into_case

    case_path = tmp_path / "case.sqlite"
    with Case.create(case_path, "Case Alpha", "C. Examiner") as case:
        analyse_into_case(engine, case, evidence[:1])
        case.add_note(case.findings(with_maps=False)[0].sha256, "Received by email on 2026-11-20.")
    pdf_out, json_out = tmp_path / "case.pdf", tmp_path / "case.json"
    assert main(["--home", str(report_zoo.home), "report", "make", str(case_path), "--pdf", str(pdf_out),
                 "--json", str(json_out)]) == EXIT_OK
    text = "\n".join(page_texts(pdf_out))
    assert "Case Alpha" in text and "Received by email on 2026-11-20." in text
    assert "Per-pixel evidence for the top candidate" in text  # maps came from the case file
    doc = json.loads(json_out.read_text())
    assert doc["case"]["case_name"] == "Case Alpha" and doc["calibrations"]
    assert main(["--home", str(report_zoo.home), "report", "verify", str(json_out)]) == EXIT_OK


def test_items_from_different_runs_keep_their_own_run(report, tmp_path):
    other_run = json.loads(json.dumps(report.run_info))
    other_run["settings"]["alpha"] = 0.05
    second = report.findings[1]
    mixed = ReportInput(report.case_meta, report.findings, [], report.run_info, report.calibrations,
                        item_runs={(str(second.path), second.sha256): other_run})
    doc = json.loads(json.dumps(mixed.document()))
    assert len(doc["runs"]) == 2 and [i.get("run_index") for i in doc["images"]] == [None, 1, None]
    back = ReportInput.from_document(doc)
    assert back.run_for(back.findings[1])["settings"]["alpha"] == 0.05 and back.run_for(back.findings[0]) == doc["run"]
    out = tmp_path / "runs.pdf"
    write_pdf(mixed, out)
    text = "\n".join(page_texts(out))
    assert "Analysed in run 2 of 2 (α 0.05" in text and "(run 2 of 2)" in text


def test_without_system_fonts_the_report_embeds_the_font_bundled_with_reportlab(tmp_path):
    from reportlab.pdfbase.ttfonts import TTFont

    from forensics_app.core.report.pdf import font_files

    files, description = font_files([tmp_path])  # a folder without DejaVu: a fresh machine
    assert "Bitstream Vera" in description
    for number, path in enumerate(files):
        TTFont(f"fallback-{number}", str(path))  # a TrueType font that reportlab can embed


def test_analyze_writes_the_report_directly(report_zoo, evidence, tmp_path):
    pdf_out, json_out = tmp_path / "direct.pdf", tmp_path / "direct.json"
    assert main(["--home", str(report_zoo.home), "analyze", str(evidence[0]), "--method", "aedr", "--pdf",
                 str(pdf_out), "--json", str(json_out), "--case-name", "Direct run"]) == EXIT_OK
    doc = json.loads(json_out.read_text())
    text = "\n".join(page_texts(pdf_out))
    assert "Direct run" in text and doc["images"][0]["sha256"] in text and f"Report ID {doc['report_id']}" in text


def test_the_pdf_reads_each_p_value_and_a_negative_in_plain_words(report, pdf, tmp_path):
    path, _ = pdf
    text = " ".join(" ".join(page_texts(path)).split())
    for f in report.findings:
        top = next(c for c in f.candidates if c.decisive)
        assert top.p_own_reading() and top.p_real_reading()
        assert " ".join(f"{top.p_own_text()} {top.p_own_reading()}".split()) in text
        assert " ".join(top.p_real_sentence().split()) in text
    negative = dataclasses.replace(report.findings[0], verdict=Verdict("not_attributed", None, "Not attributed."))
    write_pdf(dataclasses.replace(report, findings=[negative]), tmp_path / "negative.pdf")
    text = " ".join(" ".join(page_texts(tmp_path / "negative.pdf")).split())
    assert text.count("NOT ATTRIBUTED no installed generator fits (not proof of a photograph)") == 2  # summary, item


def test_the_decision_rule_in_the_report_names_no_source_file():
    assert not any(".py" in paragraph or "core/" in paragraph
                   for paragraph in decision_rule(verdict_module.__doc__))
