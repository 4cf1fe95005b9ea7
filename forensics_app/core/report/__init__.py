"""The findings report: PDF (pdf.py), figures drawn from the analysis arrays (figures.py), the JSON
written beside it (core/report_json.py) and re-verification of a findings file (verify.py)."""

from forensics_app.core.report.inputs import ReportInput, report_input_from_case
from forensics_app.core.report.pdf import write_pdf

__all__ = ["ReportInput", "report_input_from_case", "write_pdf"]
