"""Hash banks: storage (`store`, needs the `banks` extra: SQLAlchemy), interop formats (`interop`), PDQ index.

Names are imported lazily, so `jieyao.banks.interop` and `jieyao.banks.pdq_index` work without SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jieyao.banks.interop import BadLine, InteropError, SignalRecord, read_records, write_records
    from jieyao.banks.store import (
        ActiveSignal,
        AuditEntry,
        Bank,
        BankError,
        BankKind,
        BankStats,
        BankStore,
        Changes,
        ImportResult,
        Withdrawal,
        WithdrawResult,
    )

_WHERE = {
    **dict.fromkeys(("BadLine", "InteropError", "SignalRecord", "read_records", "write_records"),
                    "jieyao.banks.interop"),
    **dict.fromkeys(("ActiveSignal", "AuditEntry", "Bank", "BankError", "BankKind", "BankStats", "BankStore",
                     "Changes", "ImportResult", "Withdrawal", "WithdrawResult"), "jieyao.banks.store"),
}
__all__ = ["ActiveSignal", "AuditEntry", "BadLine", "Bank", "BankError", "BankKind", "BankStats", "BankStore",
           "Changes", "ImportResult", "InteropError", "SignalRecord", "WithdrawResult", "Withdrawal", "read_records",
           "write_records"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jieyao.banks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
