"""The findings report as PDF: cover, summary, one section per evidence item, methods and
limitations, appendix. Report identifier and "page X of Y" on every page; fonts embedded, text selectable.

Everything printed comes from the ReportInput (plain data); the only thing read at reporting time is the
evidence files themselves, to re-verify their SHA-256 and draw thumbnails.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import (
    Image, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle)

from forensics_app import __version__
from forensics_app.core import verdict as verdict_rule
from forensics_app.core.files import atomic_output, printable
from forensics_app.core.jobs import Progress, ProgressCallback, no_progress
from forensics_app.core.findings import ATTRIBUTED, INCONCLUSIVE, NOT_ATTRIBUTED, VERDICT_HEADLINES, ImageFindings
from forensics_app.core.methods import all_methods
from forensics_app.core.provenance import CLAIMS_DISCLAIMER
from forensics_app.core.report.figures import (
    calibration_histogram, check_evidence, colour_bar, heatmap_image, png_bytes)
from forensics_app.core.report.inputs import ReportInput
from forensics_app.core.report_json import report_id_of

VERDICT_TITLES = {ATTRIBUTED: "ATTRIBUTED", NOT_ATTRIBUTED: "NOT ATTRIBUTED", INCONCLUSIVE: "INCONCLUSIVE"}
MARGIN = 16 * mm
PAGE_W, PAGE_H = A4
FRAME_W = PAGE_W - 2 * MARGIN

# -- fonts -------------------------------------------------------------------------------------------
# DejaVu (wide Unicode coverage) where the system has it; otherwise Bitstream Vera, which ships inside
# reportlab itself, so a TrueType font is always embedded and text stays selectable and searchable.
_FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"), Path("/usr/share/fonts/dejavu"),
              Path("/usr/local/share/fonts"), Path.home() / ".fonts", Path("/Library/Fonts"),
              Path("C:/Windows/Fonts")]


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    mono: str
    description: str


def font_files(folders: list[Path]) -> tuple[list[Path], str]:
    """Regular, bold and monospace TrueType files, and a description for the appendix."""
    dejavu = [next((d / n for d in folders if (d / n).is_file()), None)
              for n in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")]
    if all(dejavu):
        return dejavu, "DejaVu Sans / DejaVu Sans Mono (system fonts, embedded)"
    import reportlab

    bundled = Path(reportlab.__file__).parent / "fonts"
    return ([bundled / "Vera.ttf", bundled / "VeraBd.ttf", bundled / "Vera.ttf"],
            "Bitstream Vera (bundled with reportlab, embedded; DejaVu was not found on this system)")


@lru_cache(maxsize=1)
def report_fonts() -> Fonts:
    files, description = font_files(_FONT_DIRS)
    names = ("Report-Regular", "Report-Bold", "Report-Mono")
    for name, path in zip(names, files):
        pdfmetrics.registerFont(TTFont(name, str(path)))
    return Fonts(*names, description)


# -- styles ------------------------------------------------------------------------------------------
def _style(fonts: Fonts, size: float = 9, bold: bool = False, mono: bool = False, **extra) -> ParagraphStyle:
    font = fonts.mono if mono else fonts.bold if bold else fonts.regular
    leading = extra.pop("leading", size * 1.3)
    return ParagraphStyle(f"{font}-{size}", fontName=font, fontSize=size, leading=leading, **extra)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    # lines kept as lines; anything else unprintable (undecodable bytes of a file name) escaped
    return Paragraph("<br/>".join(escape(printable(line)) for line in str(text).split("\n")), style)


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def _verdict_title(label: str) -> str:
    return VERDICT_TITLES.get(label, label.upper())


def _verdict_cell(label: str) -> str:
    """The summary's verdict: a negative always carries what it does not mean."""
    if label == NOT_ATTRIBUTED:
        return _verdict_title(label) + "\n" + VERDICT_HEADLINES[label].partition(": ")[2]
    return _verdict_title(label)


_GRID = [("GRID", (0, 0), (-1, -1), 0.4, colors.Color(0.7, 0.7, 0.7)),
         ("VALIGN", (0, 0), (-1, -1), "TOP"),
         ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
         ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
_HEADER_ROW = [("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.90, 0.90, 0.92))]


def _table(rows: list[list], widths: list[float], header: bool = True, extra: list | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    table.setStyle(TableStyle(_GRID + (_HEADER_ROW if header else []) + (extra or []) + _layout_style()))
    return table


def _layout_style() -> list:
    # tables set a cell font even around flowables; Helvetica here would be an unembedded font
    return [("FONTNAME", (0, 0), (-1, -1), report_fonts().regular), ("VALIGN", (0, 0), (-1, -1), "TOP")]


# -- the document ------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, report: ReportInput, generated: datetime):
        self.report = report
        self.generated = generated
        self.fonts = report_fonts()
        fonts = self.fonts
        self.title = _style(fonts, 20, bold=True, leading=26, spaceAfter=6)
        self.h1 = _style(fonts, 14, bold=True, spaceBefore=4, spaceAfter=6, keepWithNext=1)
        self.h2 = _style(fonts, 10.5, bold=True, spaceBefore=8, spaceAfter=3, keepWithNext=1)
        self.body = _style(fonts, 9, spaceAfter=4)
        self.small = _style(fonts, 7.5)
        self.caption = _style(fonts, 7.5, bold=True, spaceAfter=2)
        self.small_bold = _style(fonts, 7.5, bold=True)
        self.cell = _style(fonts, 8)
        self.cell_bold = _style(fonts, 8, bold=True)
        self.mono = _style(fonts, 7, mono=True)
        self.verdict_style = _style(fonts, 12, bold=True, alignment=TA_CENTER)
        self.doc = report.document()
        self.maps_left_out = sum(len(f.recorded_map_sha256) for f in report.findings if not f.maps)
        self.report_id = pdf_report_id(self.doc, self.maps_left_out)
        self.alpha = report.run_info.get("settings", {}).get("alpha")
        self.runs = report.runs()
        self.model_info = {m["id"]: m for run in reversed(self.runs) for m in run.get("models", [])}
        self.methods = all_methods()

    # cover ------------------------------------------------------------------------------------
    def cover(self) -> list:
        r = self.report
        meta = r.case_meta
        rows = [("Case", meta.get("case_name") or "(not named)"), ("Examiner", meta.get("examiner") or "(not named)")]
        rows += [(k.replace("_", " ").capitalize(), v) for k, v in meta.items()
                 if k not in ("case_name", "examiner") and v not in (None, "")]
        rows += [("Report generated (UTC)", self.generated.strftime("%Y-%m-%d %H:%M:%S")),
                 ("Findings recorded (UTC)", r.recorded or "at report generation (direct run)"),
                 ("Application", f"forensics-app {r.run_info.get('software', {}).get('forensics_app', __version__)}"
                                 f" (report written by {__version__})"),
                 ("Report identifier", self.report_id),
                 ("Findings content SHA-256", self.doc["content_sha256"]),
                 ("Evidence items", f"{len(r.findings)} analysed, {len(r.failures)} could not be analysed"),
                 ("False-attribution rate (α)", _num(self.alpha)),
                 ("Candidate generators", ", ".join(f"{m['display_name']} ({m['id']})"
                                                    for m in r.run_info.get("models", [])) or "none"),
                 ("Methods", ", ".join(m["title"] for m in r.run_info.get("methods", [])) or "none")]
        table = _table([[_p(k, self.cell_bold), _p(v, self.mono if "SHA" in k else self.cell)] for k, v in rows],
                       [48 * mm, FRAME_W - 48 * mm], header=False)
        story = [Spacer(1, 20 * mm), _p("Generator attribution report", self.title),
                 _p("Which AI image generator, if any, made the images examined: findings, methods, limits.",
                    self.body), Spacer(1, 6 * mm), table, Spacer(1, 6 * mm),
                 _p("Questions examined", self.h2),
                 _p("For each evidence item the report tests three hypotheses: (1) the image was made by one of the "
                    "installed candidate generators (each tested separately); (2) it is a real photograph; (3) it was "
                    "made by a generator that is not installed. Hypothesis (3) cannot be tested directly: a result "
                    "that fits no installed generator does not mean the image is a photograph.", self.body),
                 _p("The results apply only to the items examined, in the form in which they were received. The "
                    "findings are statistical: they state how often the method would wrongly attribute a real "
                    "photograph (the false-attribution rate α), measured on the calibration data described in "
                    "the Methods section.", self.body)]
        warnings = []
        if r.run_info.get("settings") is None:
            warnings.append("The analysis settings were not recorded with these findings.")
        if self.doc.get("cancelled"):
            warnings.append("The analysis was cancelled before every file was processed: this report covers only "
                            "the files finished.")
        demos = [m["display_name"] for m in self.model_info.values() if m.get("demonstration")]
        if demos:
            warnings.append(f"Demonstration models were used ({', '.join(demos)}): they are not real-world "
                            "generators, and findings about them demonstrate the method only.")
        for warning in warnings:
            story.append(_p("Note: " + warning, self.body))
        story += [Spacer(1, 10 * mm),
                  _table([[_p("Examiner signature", self.cell), _p("Date", self.cell), _p("Reviewer", self.cell)],
                          [Spacer(1, 26)] * 3], [FRAME_W / 3] * 3),
                  PageBreak()]
        return story

    # summary ----------------------------------------------------------------------------------
    def summary(self) -> list:
        rows = [[_p(h, self.cell_bold) for h in ("#", "File", "SHA-256", "Verdict", "Top candidate", "p-values")]]
        for i, f in enumerate(self.report.findings, 1):
            top = f.candidates[0] if f.candidates else None
            rows.append([
                _p(str(i), self.cell), _p(printable(f.facts.get("file_name") or f.path.name), self.cell),
                _p(f"{f.sha256[:32]}\n{f.sha256[32:]}", self.mono),
                _p(_verdict_cell(f.verdict.label), self.cell_bold),
                _p(f"{top.model_name}\n{top.method} · {top.status}" if top else "none", self.cell),
                _p(f"p_own {top.p_own_cell()}\n"
                   f"p_real {top.p_real_cell()}" if top else "–", self.cell)])
        widths = [8 * mm, 34 * mm, 46 * mm, 34 * mm, 30 * mm]
        widths.append(FRAME_W - sum(widths))
        story = [_p("Summary of findings", self.h1),
                 _p(f"Verdicts at a false-attribution rate of {_num(self.alpha)}. p_own: how typical the score is "
                    "of the top candidate's own outputs (small = unlike them); p_real: how often a real photograph "
                    "scores this low (small = unlike a real photo).", self.body),
                 _table(rows, widths)]
        if self.report.failures:
            story += [_p("Files that could not be analysed", self.h2),
                      _table([[_p("File", self.cell_bold), _p("Reason", self.cell_bold)]] +
                             [[_p(printable(str(x.path)), self.cell), _p(x.error, self.cell)]
                              for x in self.report.failures], [70 * mm, FRAME_W - 70 * mm])]
        if self.report.skipped:
            story += [_p("Folder entries left out by the folder walk (not analysed)", self.h2),
                      _table([[_p("Entry", self.cell_bold), _p("Reason", self.cell_bold)]] +
                             [[_p(printable(str(path)), self.cell), _p(reason, self.cell)]
                              for path, reason in self.report.skipped], [70 * mm, FRAME_W - 70 * mm])]
        return story + [PageBreak()]

    # one evidence item ------------------------------------------------------------------------
    def item(self, index: int, f: ImageFindings) -> list:
        check = check_evidence(f.path, f.sha256)
        story = [_p(f"Item {index} of {len(self.report.findings)}: "
                   f"{printable(f.facts.get('file_name') or f.path.name)}", self.h1)]
        verdict_rows = [[_p(_verdict_cell(f.verdict.label), self.verdict_style)], [_p(f.verdict.text, self.body)]]
        verdict_rows += [[_p("• " + reason, self.cell)] for reason in f.verdict.reasons]
        top = f.candidates[0] if f.candidates else None
        if top and self.model_info.get(top.model, {}).get("demonstration"):
            verdict_rows.append([_p("• The top candidate is a demonstration model, not a real-world generator.",
                                    self.cell)])
        story.append(_table(verdict_rows, [FRAME_W], header=False,
                            extra=[("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.93, 0.93, 0.96)),
                                   ("INNERGRID", (0, 0), (-1, -1), 0, colors.white)]))
        story.append(Spacer(1, 3 * mm))

        facts = f.facts
        quality = facts.get("jpeg_quality")
        fact_rows = [("Size", f"{facts.get('size_bytes', 0):,} bytes"), ("Format", facts.get("format")),
                     ("Dimensions", f"{facts.get('width')} × {facts.get('height')} pixels, {facts.get('mode')}"),
                     ("JPEG quality estimate", quality if quality is not None else "not a JPEG / not estimated"),
                     ("Analysed region", ", ".join(f"{k} {v}" for k, v in f.region.items()) or "–"),
                     ("Intake notes", "\n".join(facts.get("notes") or []) or "none")]
        thumb_w = 58 * mm
        facts_table = _table([[_p(k, self.small_bold), _p(v, self.small)] for k, v in fact_rows], [30 * mm, FRAME_W - thumb_w - 30 * mm - 2 * mm], header=False)
        if check.thumbnail is not None:
            w, h = check.thumbnail.size
            scale = min(thumb_w - 4 * mm, 60 * mm) / max(w, h)
            thumb = Image(png_bytes(check.thumbnail), width=w * scale, height=h * scale)
        else:
            thumb = _p("(no thumbnail)", self.small)
        story.append(Table([[thumb, facts_table]], colWidths=[thumb_w, FRAME_W - thumb_w],
                           style=[("LEFTPADDING", (0, 0), (-1, -1), 0)] + _layout_style()))
        identity = [("Path", printable(str(f.path))), ("SHA-256 at analysis", f.sha256),
                    ("SHA-256 now", check.sha256_now or "not available"), ("Hash check", check.note)]
        story.append(_table([[_p(k, self.small_bold), _p(v, self.mono if k.startswith("SHA") else self.small)]
                             for k, v in identity], [30 * mm, FRAME_W - 30 * mm], header=False))

        if len(self.runs) > 1:
            run = self.report.run_for(f)
            settings = run.get("settings", {})
            story.append(_p(f"Analysed in run {self.runs.index(run) + 1} of {len(self.runs)} (α {_num(settings.get('alpha'))}, "
                            f"methods {', '.join(settings.get('methods', []))}; see the appendix).", self.small))
        notes = self.report.notes.get(f.sha256, [])
        if notes:
            story.append(_p("Examiner notes", self.h2))
            story += [_p(f"{n.get('created', '')} {n.get('author', '')}: {n.get('text', '')}", self.small) for n in notes]
        story += self.provenance(f.metadata)
        story += self.candidates(f)
        story += self.heatmaps(f)
        story += self.histograms(f)
        story.append(PageBreak())
        return story

    def provenance(self, metadata: dict) -> list:
        story = [_p("Provenance metadata found (claims)", self.h2),
                 _p("Embedded metadata are claims made by whoever wrote the file: they can be stripped or forged "
                    "with common tools, and their absence proves nothing. They are reported here, apart from the "
                    "model evidence, and do not enter the verdict.", self.small)]
        lines = metadata.get("summary") if isinstance(metadata.get("summary"), list) else None
        if lines is None:
            lines = [f"{k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
                     for k, v in sorted(metadata.items()) if v not in (None, "", {}, [])]
            lines = lines or ["No embedded metadata was found."]
        # the paragraph above already says what claims are worth; the summary opens with the same warning
        story += [_p("• " + line[:600], self.small) for line in lines if line != CLAIMS_DISCLAIMER]
        return story

    def candidates(self, f: ImageFindings) -> list:
        head = ["#", "Model", "Method", "Score", "p_own", "p_real", "Threshold", "Status"]
        rows = [[_p(h, self.cell_bold) for h in head]]
        for rank, c in enumerate(f.candidates, 1):
            rows.append([_p(str(rank), self.cell), _p(f"{c.model_name}\n({c.model})", self.cell),
                         _p(c.method + ("" if c.decisive else " (shown for comparison: does not vote)"), self.cell),
                         _p(_num(c.score, 5), self.cell), _p(c.p_own_cell(), self.cell),
                         _p(c.p_real_cell(), self.cell),
                         _p(_num(c.threshold, 4), self.cell),
                         _p(c.status, self.cell_bold if c.decisive else self.cell)])
        widths = [7 * mm, 32 * mm, 27 * mm, 21 * mm, 23 * mm, 23 * mm, 19 * mm]
        widths.append(FRAME_W - sum(widths))
        decisive = [c for c in f.candidates if c.decisive]
        plain = ([_p("What the p-values of the top reading say: " + decisive[0].p_own_sentence() + " "
                     + decisive[0].p_real_sentence(), self.small)] if decisive else [])
        runs = [[_p(h, self.cell_bold) for h in ("Model", "Method", "Measurements", "Parameters", "Run")]]
        for c in f.candidates:
            components = "\n".join(f"{k} = {_num(v, 6)}" for k, v in c.components.items())
            parameters = "\n".join(f"{k} = {v}" for k, v in c.parameters.items()) or "none"
            runs.append([_p(c.model, self.small), _p(_method_label(c), self.small),
                         _p(components, self.small), _p(parameters, self.small),
                         _p(f"{c.provider.replace('ExecutionProvider', '')}\n{c.seconds:.2f} s\n{c.region_text()}",
                            self.small)])
        run_widths = [24 * mm, 30 * mm, 50 * mm, 46 * mm]
        run_widths.append(FRAME_W - sum(run_widths))
        return [_p("Ranked candidates", self.h2),
                _p("Score: low = consistent with the candidate. Status per reading (see “Decision rule” in Methods "
                   "and limitations): consistent = unlike real photos and typical of the candidate's outputs; "
                   "rejected = the reverse; undecided = fits both or neither; uncalibrated = no valid calibration. "
                   "A p-value printed as “≤ x” is at its calibration's floor 1/(n+1), n the number of samples: no "
                   "calibration sample was as extreme, so the value is a bound, not a measurement.", self.small),
                _table(rows, widths), *plain,
                _p("Method runs: measured quantities and parameters", self.h2), _table(runs, run_widths)]

    def heatmaps(self, f: ImageFindings) -> list:
        top = f.candidates[0] if f.candidates else None
        top_model = top.model if top else None
        keys = sorted(k for k in f.maps if k[0] == top_model)
        others = sorted({k[0] for k in f.maps} - {top_model})
        heading = _p("Heat maps", self.h2)
        if not keys:
            recorded = len(f.recorded_map_sha256)
            return [heading, _p((f"The analysis computed {recorded} per-pixel maps (their SHA-256 are in the findings "
                                 "file), but these findings were read from a JSON file, which keeps no arrays: they "
                                 "are not drawn. " if recorded else "No per-pixel maps are stored with these "
                                 "findings. ") + "Make the report from the case file or with 'analyze --pdf' to "
                                "include them.", self.small)]
        caption = _p(f"Per-pixel evidence for the top candidate ({top_model}), computed on the pixels it analysed "
                     f"({top.region_text()}) and averaged down for print. Colour scale from 0 to the map's 99.5th "
                     "percentile; brighter = larger change. Values are absolute pixel differences in the model's "
                     "pixel range." + (f" Maps for other candidates ({', '.join(others)}) are kept in the case file."
                                       if others else ""), self.small)
        cell_w = (FRAME_W - 4 * mm) / 2
        cells, shown, titles = [], [], []
        for model, method, name in keys:
            values = f.maps[(model, method, name)]
            method_obj = self.methods.get(method)
            title = f"{method}: " + (method_obj.map_titles.get(name, name) if method_obj else name)
            same = next((i for i, other in enumerate(shown) if np.array_equal(other, values)), None)
            if same is not None:  # e.g. |x - R(x)| of AEDR and of the single-loss baseline: print it once
                titles[same].append(title)
                continue
            image, value_range = heatmap_image(values)
            scale = min(cell_w / image.width, 62 * mm / image.height)
            width = image.width * scale
            shown.append(values)
            titles.append([title])
            cells.append([Image(png_bytes(image), width=width, height=image.height * scale, hAlign="LEFT"),
                          colour_bar(value_range, max(width, 50 * mm), label="absolute pixel difference",
                                     font=self.fonts.regular)])
        for cell, names in zip(cells, titles):
            cell.insert(0, _p("\n".join(names), self.caption))
        return self._grid(cells, cell_w, heading=[heading, caption])

    def histograms(self, f: ImageFindings) -> list:
        cell_w = (FRAME_W - 4 * mm) / 2
        cells = []
        for c in f.candidates:
            histogram = (c.calibration or {}).get("histogram")  # the samples this reading was compared with
            if histogram is None:
                continue
            condition = c.calibration.get("condition") or "all samples"
            title = f"{c.model} · {c.method}: score {_num(c.score, 4)} ({condition})"
            cells.append([calibration_histogram(histogram, c.score, c.threshold, cell_w - 4, 118 * 1.0,
                                                title=title, font=self.fonts.regular)])
        story = [_p("Calibration: where this image's score lies", self.h2)]
        if not cells:
            if any(c.calibration for c in f.candidates):
                return story + [_p("These findings were made by an earlier version that did not record the "
                                   "calibration samples' histogram; the sample sizes are in the Methods section.",
                                   self.small)]
            return story + [_p("No calibration was available for these readings: no p-values, no verdict from them.",
                               self.small)]
        story.append(_p("Distributions of the score on the calibration samples the reading was compared with (the "
                        "samples whose pixels show the image's condition; share of each set per bin): the candidate's "
                        "own outputs and real photographs. The red line is this image's score; the dashed line is the "
                        "decision threshold, where p_real reaches the critical value of the family-wise rule.",
                        self.small))
        return self._grid(cells, cell_w, heading=story)

    def _grid(self, cells: list[list], cell_w: float, heading: list) -> list:
        """Figures two per row; the heading and its caption stay on the page of the first row."""
        rows = []
        for i in range(0, len(cells), 2):
            pair = cells[i:i + 2] + ([[Spacer(1, 1)]] if len(cells[i:i + 2]) == 1 else [])
            rows.append(Table([pair], colWidths=[cell_w + 2 * mm] * 2, hAlign="LEFT",
                              style=[("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 4 * mm),
                                     ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm)] + _layout_style()))
        return [KeepTogether(heading + rows[:1])] + rows[1:]

    # methods and limitations ------------------------------------------------------------------
    def methods_section(self) -> list:
        story = [_p("Methods and limitations", self.h1)]
        for info in self.report.run_info.get("methods", []):
            method = self.methods.get(info["name"])
            story.append(_p(f"{info['title']} ({info['name']}, version {info['version']})", self.h2))
            story.append(_p(method.description if method else "(description unavailable: this method is not part "
                            "of the installed application)", self.body))
            role = ("It is decisive: its calibrated reading votes in the verdict." if info.get("decisive") else
                    "It is a baseline shown for comparison: it never decides a verdict.")
            story.append(_p(role + " Parameters: " + (json.dumps(info.get("parameters") or {}) or "none") + ".",
                            self.small))
            if method:
                story += [_p(f"Map “{name}”: {title}.", self.small) for name, title in method.map_titles.items()]
        story += [
            _p("What a result means", self.h2),
            _p("Positive (attributed): the image's score is one that real photographs reach at most α of the time, "
               "and it is typical of the candidate's own outputs. It means the image is consistent with having passed "
               "through this candidate's decoder; models sharing that autoencoder fit equally well.", self.body),
            _p("Negative (not attributed): the score is typical of real photographs and untypical of every installed "
               "candidate. It does not mean the image is a photograph: generators outside the zoo, and images "
               "altered after generation, can give the same result.", self.body),
            _p("Inconclusive: the evidence does not single out one candidate (several fit, the methods disagree, a "
               "calibration is missing, or the score fits both or neither).", self.body),
            _p("Decision rule", self.h2)]
        story += [_p(par, self.small) for par in decision_rule(verdict_rule.__doc__ or "")]
        story += [_p("Known failure modes", self.h2)] + [_p("• " + text, self.small) for text in FAILURE_MODES]
        story += self.error_rates()
        return story + [PageBreak()]

    def error_rates(self) -> list:
        seen, extractors = {}, {}
        for f in self.report.findings:
            for c in f.candidates:
                if c.extractor:
                    extractors.setdefault(c.extractor, c.calibration or {})
                elif c.calibration:
                    seen.setdefault((c.model, c.method, c.calibration.get("condition")), c)
        story = [_p("Error rates", self.h2)]
        story += self.held_out_rates()
        story += [_p(_extractor_calibration(name, cal), self.small) for name, cal in sorted(extractors.items())]
        if not seen:
            return story + [_p("No calibration was used: no reading in this report is calibrated.", self.small)]
        story.append(_p("The calibrations used, per model, method and pixel condition. Critical p: a reading is "
                        "consistent when its p_real is at most this (the family-wise rule over all candidates, "
                        "calibrated on the same real photos). Wrong generator: the share of the other candidates' "
                        "own outputs that reach this model's threshold (measured on outputs that did not set it).",
                        self.small))
        head = ["Model", "Method", "Condition", "n own", "n real", "Critical p", "Threshold", "Wrong generator"]
        rows = [[_p(h, self.cell_bold) for h in head]]
        notes = []
        for (model, method, condition), candidate in sorted(seen.items(), key=lambda kv: tuple(map(str, kv[0]))):
            cal = candidate.calibration
            rule = cal.get("rule") or {}
            rows.append([_p(str(x), self.cell) for x in (
                model, method, condition or "all", cal.get("n_own"), cal.get("n_real"),
                _num(rule.get("critical_p")) if rule.get("critical_p") is not None else "abstains",
                _num(cal.get("threshold")), candidate.wrong_generator_text())])
            notes.append(_p(f"Calibration data for {model} / {method} (created {cal.get('created', '?')}): "
                            + _describe(cal.get("data", {})), self.small))
        widths = [24 * mm, 14 * mm, 36 * mm, 13 * mm, 13 * mm, 17 * mm, 17 * mm]
        widths.append(FRAME_W - sum(widths))
        return story + [_table(rows, widths), Spacer(1, 2 * mm)] + notes

    def held_out_rates(self) -> list:
        """The error rates measured on photos and generators that never touched calibration (run_info)."""
        rates = self.report.run_info.get("held_out_error_rates")
        if not rates:
            return [_p("No held-out error rates were recorded with this analysis.", self.small)]
        story = [_p(f"Measured on held-out images ({rates['measured_on']}; {rates['benchmark']}, {rates['date']}), "
                    f"with the zoo's shipped calibrations at α = {_num(rates['alpha'])} (a line measured on other "
                    f"data says which):", self.small)]
        return story + [_p("• " + line, self.small) for line in rates["lines"]] + [Spacer(1, 2 * mm)]

    # appendix ---------------------------------------------------------------------------------
    def appendix(self) -> list:
        story = [_p("Appendix: reproducibility", self.h1)]
        if len(self.runs) > 1:
            story.append(_p(f"The items were analysed in {len(self.runs)} runs with different software, settings or "
                            "models; each run is listed below and each item names its run.", self.body))
        for number, info in enumerate(self.runs, 1):
            story += self.run_appendix(info, f" (run {number} of {len(self.runs)})" if len(self.runs) > 1 else "")
        story += [_p("Report", self.h2),
                  _table([[_p(k, self.small_bold), _p(v, self.small)] for k, v in (
                      ("Report fonts", self.fonts.description),
                      ("Report identifier", self.identifier_text()))],
                         [40 * mm, FRAME_W - 40 * mm], header=False),
                  _p("How to check this report", self.h2),
                  _p("The findings JSON written with this report records every input: evidence paths and SHA-256, "
                     "model file hashes, methods, parameters, α, tiling and provider. 'forensics-app report verify "
                     "FINDINGS.json' re-hashes the evidence and the installed models, re-runs every analysis with the "
                     "recorded settings and lists every difference. On a CPU with the same software, the scores "
                     "are reproduced bit for bit.", self.body)]
        return story

    def identifier_text(self) -> str:
        findings_id = (f"the first 16 hex digits of the findings content SHA-256 {self.doc['content_sha256']} "
                       "(canonical JSON of everything in the findings file except its creation time and these two "
                       "fields; each per-pixel map enters through its SHA-256)")
        if self.report_id == self.doc["report_id"]:
            return f"{self.report_id}: {findings_id}."
        return (f"{self.report_id}: this report leaves out the {self.maps_left_out} per-pixel maps the findings "
                f"record (it was made from a JSON file, which keeps no arrays), so its identifier differs from the "
                f"findings identifier {self.doc['report_id']} ({findings_id}): it is the first 16 hex digits of "
                f"the SHA-256 of “{self.doc['content_sha256']} without {self.maps_left_out} recorded maps”.")

    def run_appendix(self, info: dict, suffix: str) -> list:
        story = [_p(f"Models used (zoo entries){suffix}", self.h2),
                 _p("Each model has two kinds of file hash. The weights files are hashed as their publisher "
                    "distributes them (compare with the publisher's checksum). At installation this application "
                    "exported them to ONNX files, checked that the exports reproduce the original network's "
                    "outputs, and hashed them: the ONNX files are what actually ran. The model hash is one SHA-256 "
                    "over all of these hashes.", self.small), Spacer(1, 1.5 * mm)]
        for m in info.get("models", []):
            rows = [("Model", f"{m.get('display_name')} ({m.get('id')})" + (" [demonstration model]"
                                                                           if m.get("demonstration") else "")),
                    ("Model hash (weights + ONNX)", m.get("model_hash", "–")),
                    ("Calibration", m.get("calibration", "–"))]
            rows += [(f"Weights file as published: {name}", f"SHA-256 {entry.get('sha256')}\n"
                                                            f"source: {entry.get('source', '–')}")
                     for name, entry in sorted(m.get("weights", {}).items())]
            rows += [(f"ONNX file exported from the weights, as run: {name}", f"SHA-256 {entry.get('sha256')}")
                     for name, entry in sorted(m.get("onnx", {}).items())]
            story.append(_table([[_p(k, self.small_bold), _p(v, self.mono if k != "Model" else self.small)]
                                 for k, v in rows], [44 * mm, FRAME_W - 44 * mm], header=False))
            story.append(Spacer(1, 2 * mm))
        settings = info.get("settings", {})
        seeds = sorted({json.dumps(c.data.get("plan", {}).get("seed")) for c in self.report.calibrations.values()})
        rows = [(k, v) for k, v in info.get("software", {}).items()]
        rows += [("Execution provider(s)", ", ".join(info.get("providers", [])) or "–"),
                 ("Requested provider", settings.get("provider", "–")),
                 ("Methods", ", ".join(settings.get("methods", []))),
                 ("Models requested", ", ".join(settings.get("models", [])) or "every installed autoencoder"),
                 ("α (false-attribution rate)", _num(settings.get("alpha"))),
                 ("Tiling", json.dumps(settings.get("tiling", {}))),
                 ("Calibration seeds", ", ".join(seeds) or "–")]
        return story + [_p(f"Software, settings and seeds{suffix}", self.h2),
                        _table([[_p(k, self.small_bold), _p(v, self.small)] for k, v in rows],
                               [40 * mm, FRAME_W - 40 * mm], header=False)]


def decision_rule(docstring: str) -> list[str]:
    """The rule from core/verdict.py's docstring, without its summary line and its own "Decision rule" title
    (the report prints its heading once)."""
    paragraphs = _paragraphs(docstring)[1:]
    if paragraphs and paragraphs[0].startswith("Decision rule"):
        paragraphs[0] = paragraphs[0].partition(":")[2].strip()
    return [p for p in paragraphs if p]


def pdf_report_id(doc: dict, maps_left_out: int) -> str:
    """The identifier printed on the PDF: the findings' own identifier when the PDF shows everything the findings
    hold; a PDF that leaves out recorded per-pixel maps (made from a JSON file) shows other content, so its
    identifier is derived from the content hash together with that fact."""
    if not maps_left_out:
        return doc["report_id"]
    content = f"{doc['content_sha256']} without {maps_left_out} recorded maps"
    return report_id_of(hashlib.sha256(content.encode("ascii")).hexdigest())


def _paragraphs(docstring: str) -> list[str]:
    """A docstring's paragraphs and "- " bullets as single lines (its hard line breaks removed)."""
    out = []
    for block in docstring.replace("*", "").split("\n\n"):
        for i, part in enumerate(block.split("\n- ")):
            out.append(("• " if i else "") + " ".join(line.strip() for line in part.strip().lstrip("- ").split("\n")))
    return [p for p in out if p.strip("• ")]


def _describe(data: dict) -> str:
    def flat(value, prefix=""):
        if isinstance(value, dict):
            return [line for k, v in value.items() for line in flat(v, f"{prefix}{k}.")]
        return [f"{prefix[:-1]}: {value}"]
    return "; ".join(flat(data)) or "not recorded"


def _method_label(c) -> str:
    if c.extractor:  # a learned fingerprint: the extractor is what was run
        return f"{c.method}, extractor {c.extractor}"
    return f"{c.method} v{c.method_version}"


def _extractor_calibration(name: str, cal: dict) -> str:
    unknown = ", ".join(cal.get("unknown_generators", [])) or "none recorded"
    return (f"Learned fingerprint {name} (shown, never votes): names a generator only when its probability reaches "
            f"{_num(cal.get('threshold'), 3)}, set so that generators it was not trained on ({unknown}; "
            f"{cal.get('unknown_images', '?')} images) and held-back real photos are named at most "
            f"{_num(cal.get('target_unknown_named'), 2)} of the time; accuracy on "
            f"{cal.get('validation_images', '?')} held-back training-split images {_num(cal.get('validation_accuracy'), 3)}.")


FAILURE_MODES = [
    "Heavy compression: JPEG below quality about 90, or repeated re-compression, erases the fine-scale traces "
    "the methods rely on; negatives on such files are reported as inconclusive, and at quality about 85 or "
    "lower (strong JPEG traces in the pixels, or the file's own tables) no generator is named either: at that "
    "compression the tests between generators named the wrong one too often.",
    "Resizing, cropping to odd offsets, rotation and filters change every pixel and move an image away from "
    "the decoder's outputs: a generated image may then look like a photo.",
    "Screenshots and screen recordings re-sample and re-encode the image; treat them like resized images.",
    "Models sharing an autoencoder (e.g. several generators built on the same VAE) cannot be told apart: they are "
    "reported together as inconclusive, never as one of them.",
    "Generators not in the zoo: an image from an unknown generator is mostly 'not attributed' or inconclusive, "
    "but one that resembles an installed generator can be named as it (the wrong-generator rate for generators "
    "outside the installed set, below); a negative is never evidence of a real photograph.",
    "Other autoencoders' outputs of smooth, low-texture content can score like a candidate's own outputs under "
    "AEDR alone. Measured (held-out photos, 128 px crops, three demonstration autoencoders not used in any "
    "calibration, α = 1%): AEDR alone attributed 0 of 18 PNG and 3 of 18 JPEG q90 outputs to TAEF2; with the "
    "inversion deep check also required, none. Confirm consequential attributions with both methods.",
    "Demonstration models are small generators trained for testing this software; findings about them show how "
    "the method behaves, not anything about real-world generators.",
    "Error rates are measured on held-out photos and generators (below); images unlike them (other cameras, "
    "heavy editing, unusual content) may behave differently.",
    "A crop off the latent grid hides a generator from AEDR. The search over grid phases covers the "
    "demonstration autoencoders; TAEF2 is scored at the stored grid only, and a rejection is then not "
    "informative when the image's sides are not multiples of 8, or when another grid phase reconstructs the "
    "image's centre clearly better (the grid check; it caught 21 of 22 shifted TAEF2 outputs, not all).",
    "Resizing after generation: upscaling leaves resampling traces that withhold both a negative and an "
    "attribution (inconclusive); antialiased downscaling mostly leaves none and makes an output score like a "
    "photo. A candidate's rejection is withheld where the score is one its own outputs reach once downscaled "
    "by 0.5-0.9x (a ceiling its calibration records; the shipped calibrations of the inversion and "
    "reconstruction methods have none); an output downscaled further or edited otherwise "
    "can still be rejected by every candidate (held-out rates below).",
    "Blurred and out-of-focus photos: autoencoders smooth, so a blurred photo can score like a decoder's output "
    "(held-out photos blurred by 3 pixels were named as demonstration AE 3 in 5 of 50 before the check). No "
    "generator is named on an image with less fine detail than 99% of that generator's own outputs (a floor its "
    "AEDR calibration records; with the inversion method alone there is none, and no such check); blur "
    "lighter than that is covered only by the held-out rates below.",
]


def write_pdf(report: ReportInput, out: Path, generated: datetime | None = None,
              progress: ProgressCallback = no_progress) -> dict:
    """Write the report; returns {"report_id", "pages", "path"}. ``progress``: per item drawn (figures and
    thumbnails are most of the work), then once while the pages are laid out."""
    generated = generated or datetime.now(timezone.utc)
    builder = _Builder(report, generated)
    story = builder.cover() + builder.summary()
    items = len(report.findings)
    for i, f in enumerate(report.findings, 1):
        progress(Progress(0.9 * (i - 1) / max(1, items), f"drawing item {i} of {items}"))
        story += builder.item(i, f)
    story += builder.methods_section() + builder.appendix()
    progress(Progress(0.9, "laying out the pages"))
    case = report.case_meta.get("case_name") or "unnamed case"
    stamp = generated.strftime("%Y-%m-%d %H:%M UTC")
    pages = []
    fonts = builder.fonts

    class NumberedCanvas(canvas.Canvas):
        """Defers the header and footer until the total page count is known."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._saved_pages = []

        def showPage(self):
            self._saved_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._saved_pages)
            pages.append(total)
            for number, state in enumerate(self._saved_pages, 1):
                self.__dict__.update(state)
                self.setFont(fonts.regular, 7.5)
                self.setFillColor(colors.Color(0.35, 0.35, 0.35))
                self.drawString(MARGIN, PAGE_H - 10 * mm, f"Generator attribution report · {case}"[:90])
                self.drawRightString(PAGE_W - MARGIN, PAGE_H - 10 * mm, f"Report ID {builder.report_id}")
                self.drawString(MARGIN, 9 * mm, f"forensics-app {__version__} · generated {stamp}")
                self.drawRightString(PAGE_W - MARGIN, 9 * mm, f"page {number} of {total}")
                super().showPage()
            super().save()

    with atomic_output(out) as partial:  # a failed build leaves no half-written report and the old one whole
        doc = SimpleDocTemplate(str(partial), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN,
                                topMargin=MARGIN + 2 * mm, bottomMargin=MARGIN,
                                title=f"Generator attribution report: {case}",
                                author=report.case_meta.get("examiner") or "", subject=f"Report ID {builder.report_id}",
                                creator=f"forensics-app {__version__}", keywords=builder.report_id,
                                initialFontName=fonts.regular)  # else every page references an unembedded Helvetica
        doc.build(story, canvasmaker=NumberedCanvas)
    progress(Progress(1.0, f"{pages[0]} pages written"))
    return {"report_id": builder.report_id, "pages": pages[0], "path": str(out)}
