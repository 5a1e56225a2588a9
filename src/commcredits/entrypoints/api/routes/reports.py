"""Usage reports (filled in by the reports work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/tenants/{tid}/reports", tags=["reports"])
