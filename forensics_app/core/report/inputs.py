"""What a report is made from: plain data, whether it comes from a run, a case file or a findings JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forensics_app.core.calibration import Calibration
from forensics_app.core.findings import FailedImage, ImageFindings
from forensics_app.core.report_json import (
    calibrations_from_document, findings_document, item_key, item_runs_from_document, results_from_document)


@dataclass
class ReportInput:
    case_meta: dict  # case_name, examiner, and any further fields (organisation, reference, notes)
    findings: list[ImageFindings]
    failures: list[FailedImage]
    run_info: dict  # Engine.run_info(): software, settings, providers, models with hashes, methods
    calibrations: dict[tuple[str, str], Calibration] = field(default_factory=dict)  # (model, method)
    recorded: str | None = None  # when the findings were recorded (UTC ISO), when known
    item_runs: dict[tuple[str, str], dict] = field(default_factory=dict)  # (path, sha256) -> its own run info
    notes: dict[str, list[dict]] = field(default_factory=dict)  # evidence sha256 -> examiner notes (text, author, created)
    cancelled: bool = False  # the run was cancelled: the findings cover only the files finished
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason): folder entries not analysed

    def run_for(self, item: ImageFindings | FailedImage) -> dict:
        return self.item_runs.get(item_key(item), self.run_info)

    def runs(self) -> list[dict]:
        """Every distinct run, the main one first."""
        out = [self.run_info]
        for run in self.item_runs.values():
            if run not in out:
                out.append(run)
        return out

    def document(self) -> dict:
        """The findings JSON; its content hash is the report identifier."""
        doc = findings_document([*self.findings, *self.failures], self.run_info, calibrations=self.calibrations,
                                case=self.case_meta, item_runs=self.item_runs, notes=self.notes,
                                cancelled=self.cancelled, skipped=self.skipped)
        if self.recorded:
            doc["created"] = self.recorded
        return doc

    @classmethod
    def from_document(cls, doc: dict, case_meta: dict | None = None) -> ReportInput:
        findings, failures = results_from_document(doc)
        return cls({**doc.get("case", {}), **(case_meta or {})}, findings, failures, doc["run"],
                   calibrations_from_document(doc), doc.get("created"), item_runs_from_document(doc),
                   doc.get("notes", {}), bool(doc.get("cancelled")),
                   [(Path(d["path"]), d["reason"]) for d in doc.get("skipped", [])])


def calibrations_matching(findings: list[ImageFindings], zoo) -> dict[tuple[str, str], Calibration]:
    """The installed calibrations that are exactly the ones the readings were compared with (same creation
    time and sample sizes); a calibration replaced since the analysis is left out, never substituted."""
    from forensics_app.core.errors import ForensicsError
    from forensics_app.core.pipeline import load_model_calibrations

    installed: dict[str, dict[str, Calibration]] = {}
    found = {}
    for f in findings:
        for c in f.candidates:
            if not c.calibration or (c.model, c.method) in found:
                continue
            if c.model not in installed:
                try:
                    installed[c.model] = load_model_calibrations(zoo.installed(c.model))[0]
                except ForensicsError:
                    installed[c.model] = {}
            cal = installed[c.model].get(c.method)
            if cal is not None and (cal.created, len(cal.own_scores), len(cal.real_scores)) == (
                    c.calibration.get("created"), c.calibration.get("n_own"), c.calibration.get("n_real")):
                found[(c.model, c.method)] = cal
    return found


def report_input_from_case(case, zoo) -> ReportInput:
    """Everything the case holds about its latest analyses, with their maps and the examiner's notes."""
    from forensics_app.core.errors import ForensicsError

    findings, failures = case.findings(with_maps=True), case.failures()
    runs = case.run_info()
    if not runs:
        raise ForensicsError("The case holds no analysis yet: analyse evidence into it first "
                             "(forensics-app analyze FILES --case CASE_FILE).")
    latest = {}
    for record in case.history():  # oldest first: the last one per item wins
        latest[(str(record.path), record.sha256)] = record
    keys = {item_key(f) for f in findings}
    item_runs = {k: r.run_info for k, r in latest.items() if k in keys and r.run_info != runs[-1]}
    recorded = max((r.finished for k, r in latest.items() if k in keys), default=None)
    meta = case.meta
    case_meta = {"case_name": meta.get("name"), "examiner": meta.get("examiner"), "case_created": meta.get("created"),
                 "case_file": str(case.path)}
    notes = {f.sha256: [dict(n.__dict__) for n in case.notes(f.sha256)] for f in findings}
    return ReportInput(case_meta, findings, failures, runs[-1], calibrations_matching(findings, zoo), recorded,
                       item_runs, {k: v for k, v in notes.items() if v}, skipped=case.skipped())
