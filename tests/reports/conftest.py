"""The report fixtures (a tenant whose switch calls and texts) for every report module."""

from tests.reports.test_reports import usage, voice  # noqa: F401
