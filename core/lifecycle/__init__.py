"""The data's lifecycle: retention of message text, erasure of one person's text, exports."""

from core.lifecycle.erasure import ErasureReport, erase_person
from core.lifecycle.export import Exporter, ExportReport
from core.lifecycle.retention import Retention, RetentionReport

__all__ = [
    "ErasureReport",
    "ExportReport",
    "Exporter",
    "Retention",
    "RetentionReport",
    "erase_person",
]
