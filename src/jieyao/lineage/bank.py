"""Lineage banks: fingerprints of known models (no weights) in the hash-bank database, searched by shape.

Two tables of our own, created when missing, beside the bank store's (`jieyao.banks.schema`; no name clashes,
and `BankStore` ignores tables it does not own): `lineage_models` (one row per known model; names are unique
across all lineage banks, so "descendant of NAME" is never ambiguous) and `lineage_tensors` (per tensor: the
canonical shape, an indexed shape key, params, the sketch as float16 and the SimHash code).

Search: candidate tensors come from the shape index (codes only, 32 bytes a row); a SimHash prefilter drops
pairs whose Hamming distance is above `hamming_bound(min_cosine)`, the 99.9 % quantile of Bin(256, θ/π) at the
threshold cosine (123 of 256 bits at cos 0.35: ≥ 99.9 % of tensor pairs at the threshold survive; unrelated
pairs, mean distance 128, sd 8, survive about 29 % of the time, so it is a cheap first cut, not the verdict);
the sketches of the surviving rows are then loaded and `fingerprint.compare` decides, with the reference's
stored totals for coverage. A model whose rows are corrupt is reported by name and left out; the rest still match."""

from __future__ import annotations

import builtins
import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from jieyao.lineage.fingerprint import (
    CODE_BITS,
    SKETCH_DIM,
    Lineage,
    ModelPrint,
    TensorPrint,
    Thresholds,
    compare,
    hamming_bound,
)
from jieyao.sqlengine import WRITE_OPTION, DatabaseOpenError, db_error, open_engine, quiet_rollback

MAX_NAME_CHARS = 200
MAX_NOTE_CHARS = 2_000
MAX_TENSORS_PER_MODEL = 4_096
"""Per tensor ~2 KB (float16 sketch) + 32 B code, ~4 KB when a 2-D tensor of unknown layout keeps its transposed
sketch too: DFL / inswapper-sized models (30-300 tensors) take well under 1 MB; the cap bounds a model at ~17 MB."""

lineage_metadata = MetaData()
lineage_models = Table(
    "lineage_models", lineage_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_NAME_CHARS), nullable=False, unique=True),
    Column("bank", String(64), nullable=False, index=True),
    Column("params", BigInteger, nullable=False),
    Column("tensors", Integer, nullable=False),
    Column("format", String(32)),
    Column("added", DateTime, nullable=False),
    Column("source", Text),
    Column("note", Text),
)
lineage_tensors = Table(
    "lineage_tensors", lineage_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("lineage_models.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("shape", String(100), nullable=False),
    Column("shape_key", String(100), nullable=False),
    Column("params", BigInteger, nullable=False),
    Column("sketch", LargeBinary, nullable=False),
    Column("transposed", LargeBinary),
    Column("code", LargeBinary, nullable=False),
    Index("ix_lineage_tensors_shape_key", "shape_key"),
)
LINEAGE_TABLES = frozenset(lineage_metadata.tables)


class LineageBankError(ValueError):
    """A lineage bank that cannot be opened, written or read; the message names the model when it is one."""


@dataclass(frozen=True)
class LineageModel:
    name: str
    bank: str
    params: int
    tensors: int
    format: str | None
    added: dt.datetime
    source: str | None
    note: str | None


@dataclass(frozen=True)
class SearchHit:
    name: str
    bank: str
    lineage: Lineage

    def __iter__(self) -> Iterator[Any]:  # unpacks as (name, bank, lineage)
        return iter((self.name, self.bank, self.lineage))


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def shape_key(shape: tuple[int, ...]) -> str:
    """2-D shapes are keyed unordered so a transposed tensor of unknown layout finds its counterpart."""
    return shape_text(tuple(sorted(shape)) if len(shape) == 2 else shape)


def _check_name(value: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise LineageBankError(f"{what} must not be empty")
    if len(text) > limit or any(ord(ch) < 32 for ch in text):
        raise LineageBankError(f"{what} must be at most {limit} printable characters")
    return text


class LineageBank:
    """Open with `LineageBank.open(path_or_url)`; close (or use `with`)."""

    def __init__(self, target: str | Path, *, create: bool = True) -> None:
        try:
            self._engine, self.url = open_engine(target, create=create, what="lineage bank database")
        except DatabaseOpenError as exc:
            hint = " (add a model first: jieyao lineage add BANK MODEL --name NAME)" if str(exc).startswith("no ") \
                else ""
            raise LineageBankError(f"{exc}{hint}") from None
        try:
            self._init_schema(create)
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def open(cls, target: str | Path, *, create: bool = True) -> LineageBank:
        return cls(target, create=create)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> LineageBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _init_schema(self, create: bool) -> None:
        with self._tx(write=create) as conn:
            names = set(inspect(conn).get_table_names())
            if names >= LINEAGE_TABLES:
                return
            if not create:
                raise LineageBankError(f"{self.url} holds no lineage bank (add a model first)")
            lineage_metadata.create_all(conn, checkfirst=True)

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        try:
            conn = self._engine.connect()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise LineageBankError(f"{self.url}: {db_error(exc)}") from None
        try:
            conn.execution_options(**{WRITE_OPTION: write})
            trans = conn.begin()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            conn.close()
            raise LineageBankError(f"{self.url}: {db_error(exc)}") from None
        try:
            yield conn
            trans.commit()
        except IntegrityError as exc:
            quiet_rollback(trans)
            raise LineageBankError(f"{self.url}: {db_error(exc)}") from None
        except (SQLAlchemyError, sqlite3.Error) as exc:
            quiet_rollback(trans)
            raise LineageBankError(f"{self.url}: {db_error(exc)}") from None
        except BaseException:
            quiet_rollback(trans)
            raise
        finally:
            conn.close()

    # --- writing ----------------------------------------------------------------------------------------

    def add(self, bank: str, name: str, model: ModelPrint, *, source: str | None = None,
            note: str | None = None) -> LineageModel:
        bank = _check_name(bank, "bank name", 64)
        name = _check_name(name, "model name", MAX_NAME_CHARS)
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise LineageBankError(f"note must be at most {MAX_NOTE_CHARS} characters")
        if not model.tensors:
            raise LineageBankError(f"{name}: nothing to store: the model has no fingerprintable float tensors")
        if len(model.tensors) > MAX_TENSORS_PER_MODEL:
            raise LineageBankError(f"{name}: {len(model.tensors)} tensors, more than {MAX_TENSORS_PER_MODEL}")
        added = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        with self._tx(write=True) as conn:
            row = conn.execute(select(lineage_models.c.bank).where(lineage_models.c.name == name)).first()
            if row is not None:
                raise LineageBankError(f"a model named {name!r} is already in lineage bank {row.bank!r} "
                                       "(names are unique across lineage banks; remove it first)")
            model_id = conn.execute(insert(lineage_models).values(
                name=name, bank=bank, params=model.total_params, tensors=len(model.tensors),
                format=model.format, added=added, source=source, note=note)).inserted_primary_key
            if model_id is None:
                raise LineageBankError(f"{name}: the database returned no id for the new model")
            model_id = model_id[0]
            conn.execute(insert(lineage_tensors), [_tensor_row(model_id, t) for t in model.tensors])
        return LineageModel(name, bank, model.total_params, len(model.tensors), model.format, added, source, note)

    def remove(self, name: str) -> bool:
        with self._tx(write=True) as conn:
            model_id = conn.execute(select(lineage_models.c.id).where(lineage_models.c.name == name)).scalar()
            if model_id is None:
                return False
            conn.execute(delete(lineage_tensors).where(lineage_tensors.c.model_id == model_id))
            conn.execute(delete(lineage_models).where(lineage_models.c.id == model_id))
        return True

    # --- reading ----------------------------------------------------------------------------------------

    def list(self, bank: str | None = None) -> builtins.list[LineageModel]:
        q = select(lineage_models).order_by(lineage_models.c.bank, lineage_models.c.name)
        if bank is not None:
            q = q.where(lineage_models.c.bank == bank)
        with self._tx(write=False) as conn:
            return [LineageModel(r.name, r.bank, r.params, r.tensors, r.format, r.added, r.source, r.note)
                    for r in conn.execute(q)]

    def get(self, name: str) -> ModelPrint:
        """The stored fingerprint of one model (LineageBankError naming it when its rows are corrupt)."""
        with self._tx(write=False) as conn:
            row = conn.execute(select(lineage_models).where(lineage_models.c.name == name)).first()
            if row is None:
                raise LineageBankError(f"no lineage model named {name!r}")
            return self._load(conn, row)

    def _load(self, conn: Connection, row: Any) -> ModelPrint:
        rows = conn.execute(select(lineage_tensors).where(lineage_tensors.c.model_id == row.id)
                            .order_by(lineage_tensors.c.id)).all()
        tensors = tuple(_tensor(row.name, r) for r in rows)
        if len(tensors) != row.tensors or sum(t.params for t in tensors) != row.params:
            raise LineageBankError(f"lineage model {row.name!r} is corrupt: {len(tensors)} tensor rows, "
                                   f"{row.tensors} expected")
        return ModelPrint(tensors=tensors, total_params=row.params, format=row.format, skipped=())

    def search(self, child: ModelPrint, top: int = 5, thresholds: Thresholds | None = None,
               errors: builtins.list[str] | None = None) -> builtins.list[SearchHit]:
        """The closest known references (descendant verdicts first, then coverage, then best cosine), each with
        `compare`'s evidence; only references sharing at least one tensor above the cosine threshold. A corrupt
        model is left out and described in `errors` (when given).

        Three steps: the codes of same-shape rows (shape index; 32 bytes a row) → Hamming prefilter at
        `hamming_bound(min_cosine)` → sketches of the surviving rows only → `compare` per reference, with the
        reference's stored totals for coverage. A pair dropped by the prefilter (< 0.1 % at the threshold
        cosine) is not counted, as if its cosine were below the threshold."""
        th = thresholds or Thresholds()
        if not child.tensors:
            return []
        bound = hamming_bound(th.min_cosine)
        keys: dict[str, builtins.list[TensorPrint]] = {}
        for t in child.tensors:
            keys.setdefault(shape_key(t.shape), []).append(t)
        hits: builtins.list[SearchHit] = []
        with self._tx(write=False) as conn:
            kept = self._prefilter(conn, keys, bound)
            if not kept:
                return []
            rows: dict[int, builtins.list[Any]] = {}
            ids = sorted(kept)
            for start in range(0, len(ids), 500):
                q = select(lineage_tensors).where(lineage_tensors.c.id.in_(ids[start:start + 500]))
                for r in conn.execute(q):
                    rows.setdefault(r.model_id, []).append(r)
            models = conn.execute(select(lineage_models).where(lineage_models.c.id.in_(sorted(rows)))).all()
        for row in models:
            try:
                tensors = tuple(_tensor(row.name, r) for r in sorted(rows[row.id], key=lambda r: r.id))
            except LineageBankError as exc:
                if errors is not None:
                    errors.append(str(exc))
                continue
            reference = ModelPrint(tensors=tensors, total_params=row.params, format=row.format, skipped=())
            lineage = compare(child, reference, th, reference_tensors=row.tensors)
            if lineage.matches:
                hits.append(SearchHit(row.name, row.bank, lineage))
        hits.sort(key=lambda h: (not h.lineage.descendant, -h.lineage.coverage,
                                 -max(m.cosine for m in h.lineage.matches), h.name))
        return hits[:top]

    def _prefilter(self, conn: Connection, keys: dict[str, builtins.list[TensorPrint]], bound: int) -> set[int]:
        """Ids of bank tensor rows worth an exact cosine: same shape key and, for a same-shape pair, Hamming
        distance ≤ bound to some child tensor. A transposed pairing (unknown 2-D layout) always passes: the code
        is of the untransposed sketch. A row whose code is malformed passes too, so its model is reported."""
        found: set[int] = set()
        key_list = sorted(keys)
        for start in range(0, len(key_list), 500):
            q = select(lineage_tensors.c.id, lineage_tensors.c.shape_key, lineage_tensors.c.shape,
                       lineage_tensors.c.code, lineage_tensors.c.transposed.is_not(None).label("has_t")) \
                .where(lineage_tensors.c.shape_key.in_(key_list[start:start + 500]))
            groups: dict[tuple[str, str], builtins.list[tuple[int, bytes]]] = {}
            for r in conn.execute(q):
                code = bytes(r.code) if isinstance(r.code, bytes | bytearray | memoryview) else b""
                children = keys[r.shape_key]
                if len(code) != CODE_BITS // 8 or r.has_t or any(
                        t.transposed is not None or shape_text(t.shape) != r.shape for t in children):
                    found.add(r.id)
                    continue
                groups.setdefault((r.shape_key, r.shape), []).append((r.id, code))
            for (key, _), members in groups.items():
                bank_codes = np.frombuffer(b"".join(c for _, c in members), dtype=np.uint8).reshape(len(members), -1)
                child_codes = np.frombuffer(b"".join(t.code for t in keys[key]), dtype=np.uint8) \
                    .reshape(len(keys[key]), -1)
                distance = _POPCOUNT[bank_codes[:, None, :] ^ child_codes[None, :, :]].sum(axis=2, dtype=np.int32)
                passed = (distance <= bound).any(axis=1)
                found.update(row_id for (row_id, _), ok in zip(members, passed, strict=True) if ok)
        return found


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _tensor_row(model_id: int, t: TensorPrint) -> dict[str, Any]:
    return {"model_id": model_id, "name": t.name[:1000], "shape": shape_text(t.shape), "shape_key": shape_key(t.shape),
            "params": t.params, "sketch": np.asarray(t.sketch, dtype="<f2").tobytes(),
            "transposed": None if t.transposed is None else np.asarray(t.transposed, dtype="<f2").tobytes(),
            "code": bytes(t.code)}


def _sketch(model: str, blob: Any, what: str) -> np.ndarray:
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) != 2 * SKETCH_DIM:
        size = len(blob) if isinstance(blob, bytes | bytearray | memoryview) else type(blob).__name__
        raise LineageBankError(f"lineage model {model!r} is corrupt: a {what} of {size} bytes, "
                               f"{2 * SKETCH_DIM} expected")
    values = np.frombuffer(bytes(blob), dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(values))
    if not np.isfinite(values).all() or not 0.9 < norm < 1.1:
        raise LineageBankError(f"lineage model {model!r} is corrupt: a {what} that is not a unit vector")
    return values / norm


def _tensor(model: str, r: Any) -> TensorPrint:
    try:
        shape = tuple(int(d) for d in str(r.shape).split("x"))
    except ValueError:
        raise LineageBankError(f"lineage model {model!r} is corrupt: shape {r.shape!r}") from None
    code = r.code
    if not isinstance(code, bytes | bytearray | memoryview) or len(code) != CODE_BITS // 8:
        raise LineageBankError(f"lineage model {model!r} is corrupt: a code that is not {CODE_BITS // 8} bytes")
    sketch = _sketch(model, r.sketch, "sketch")
    transposed = None if r.transposed is None else _sketch(model, r.transposed, "transposed sketch")
    return TensorPrint(name=r.name, shape=shape, params=int(r.params), sketch=sketch, code=bytes(code),
                       transposed=transposed)


def model_json(m: LineageModel) -> dict[str, Any]:
    return {"name": m.name, "bank": m.bank, "params": m.params, "tensors": m.tensors, "format": m.format,
            "added": m.added.isoformat(), "source": m.source, "note": m.note}


