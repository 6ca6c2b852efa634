"""(being written by the cases helper)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
