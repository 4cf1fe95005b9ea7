"""Writing a case's report files (findings JSON and PDF) in one step, with progress: what the window's
File > Export report does off the GUI thread, with the same checks as ``report make``."""

from __future__ import annotations

import json
from pathlib import Path

from forensics_app.core.errors import ForensicsError
from forensics_app.core.files import check_output_path, same_file, write_atomically
from forensics_app.core.jobs import Progress, ProgressCallback, no_progress
from forensics_app.core.report.inputs import ReportInput, report_input_from_case
from forensics_app.core.report.pdf import write_pdf


def case_report(case, zoo, case_name: str = "", examiner: str = "") -> ReportInput:
    """The report of everything the case holds; a name or examiner given here is printed instead of the
    recorded one (the case file itself is not changed)."""
    report = report_input_from_case(case, zoo)
    report.case_meta.update({k: v.strip() for k, v in (("case_name", case_name), ("examiner", examiner))
                             if v.strip()})
    return report


def check_report_outputs(pdf: Path | None, json_out: Path | None, protected: list[Path],
                         names: tuple[str, str] = ("the PDF report", "the findings JSON")) -> None:
    """Refuse, before any work, report outputs whose folder is missing or that are a protected input (an
    evidence file, the case), and a PDF and JSON that are one file. ``names``: the outputs as the user named
    them (a menu's words, or a command's options)."""
    for out, what in ((pdf, names[0]), (json_out, names[1])):
        if out is not None:
            check_output_path(out, protected, what)
    if pdf is not None and json_out is not None and same_file(pdf, json_out):
        raise ForensicsError(f"{names[0]} and {names[1]} name the same file; give each its own.")


def export_report(report: ReportInput, protected: list[Path], pdf: Path | None = None, json_out: Path | None = None,
                  progress: ProgressCallback = no_progress) -> list[str]:
    """Write the findings JSON and/or the PDF; outputs that are a protected input (an evidence file, the
    case) are refused before anything is written. Returns one line per file written."""
    if pdf is None and json_out is None:
        raise ForensicsError("Choose where to write the report: a PDF file, a JSON file or both.")
    check_report_outputs(pdf, json_out, [*protected, *(item.path for item in [*report.findings, *report.failures])])
    written = []
    if json_out is not None:
        progress(Progress(0.0, "writing the findings JSON"))
        document = report.document()
        write_atomically(json_out, json.dumps(document, indent=2).encode("utf-8"))
        written.append(f"findings {document['report_id']} written to {json_out}")
    if pdf is not None:
        start = 0.1 if json_out is not None else 0.0

        def pdf_progress(p: Progress) -> None:
            progress(Progress(start + (1 - start) * p.fraction, p.message))

        result = write_pdf(report, pdf, progress=pdf_progress)
        written.append(f"report {result['report_id']} ({result['pages']} pages) written to {pdf}")
    progress(Progress(1.0, "done"))
    return written
