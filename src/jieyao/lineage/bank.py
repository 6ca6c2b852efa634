"""Lineage banks: fingerprints of known models (no weights) in the hash-bank database, searched by shape.

Two tables of our own, created when missing, beside the bank store's (`jieyao.banks.schema`; no name clashes,
and `BankStore` ignores tables it does not own): `lineage_models` (one row per known model; names are unique
across all lineage banks, so "descendant of NAME" is never ambiguous) and `lineage_tensors` (per tensor: the
canonical shape, an indexed shape key, params, the sketch as float16 and the SimHash code).

A third, `lineage_state`, holds one generation number bumped by every add and remove (created when missing).

Search is exact (every same-shape pair's cosine, no SimHash cut): an in-memory index per canonical shape key
(`_Index`: all reference sketches of that key as one float32 matrix, rows → (model, tensor), the codes as a uint8
matrix) is loaded lazily from the database and rebuilt when the bank's change counter moves (the generation plus
count/max/sum of the model ids, re-read at every search: one cheap query, so a second process sharing the file
sees a change at its next search). A search is then one matrix product per shape key of the child, and
`fingerprint.compare` runs only for the references with a row near the threshold, over those rows, with the
reference's stored totals for coverage. Memory: ~4.1 KB per stored sketch (float32 row + 32 B code + ids),
another 4 KB for a kept transposed sketch: a 12-tensor reference ~50 KB, 5,000 of them ~250 MB. A bank of more
than `INDEX_MAX_SKETCHES` sketches is not held; its search streams the same products from the database in
batches (same answers, slower). A model whose rows are corrupt is reported by name and left out; the rest still
match."""

from __future__ import annotations

import builtins
import datetime as dt
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
    func,
    insert,
    inspect,
    select,
    update,
)

from jieyao.lineage.fingerprint import (
    CODE_BITS,
    SKETCH_DIM,
    Lineage,
    ModelPrint,
    TensorPrint,
    Thresholds,
    compare,
)
from jieyao.sqlengine import DatabaseOpenError, db_error, open_engine, transaction

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
lineage_state = Table(
    "lineage_state", lineage_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)
LINEAGE_TABLES = frozenset(lineage_metadata.tables)
REQUIRED_TABLES = frozenset({"lineage_models", "lineage_tensors"})
"""What makes a file a lineage bank; `lineage_state` is added when missing (a bank written before it existed)."""

INDEX_MAX_SKETCHES = 131_072
"""The most sketches (rows + kept transposed sketches) the in-memory search index holds: ~4.1 KB each, so at most
~540 MB (~10,000 references of 12 tensors). A bigger bank is searched from the database in batches."""
SCAN_BATCH_ROWS = 4_096
"""Rows decoded at a time when the index is not held (and when it is loaded)."""
CANDIDATE_SLACK = 1e-3
"""A row is handed to `compare` when a matrix product is within this of the threshold: float32 products of unit
1024-vectors differ from `compare`'s own dot products by ~1e-6, so no pair `compare` would keep is missed."""


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

    def __init__(self, target: str | Path, *, create: bool = True, index_rows: int = INDEX_MAX_SKETCHES) -> None:
        self.index_rows = index_rows
        """Hold the search index only for banks of at most this many sketches (0: always search the database)."""
        self._cache: tuple[tuple[Any, ...], _Index | None] | None = None
        self._has_state = False
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
    def open(cls, target: str | Path, *, create: bool = True, index_rows: int = INDEX_MAX_SKETCHES) -> LineageBank:
        return cls(target, create=create, index_rows=index_rows)

    def close(self) -> None:
        self._cache = None
        self._engine.dispose()

    def __enter__(self) -> LineageBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _init_schema(self, create: bool) -> None:
        with self._tx(write=create) as conn:
            names = set(inspect(conn).get_table_names())
            if names >= LINEAGE_TABLES:
                self._has_state = True
                return
            if names >= REQUIRED_TABLES and not create:
                return  # an older bank, opened to read: the counter works without the generation row
            if not create:
                raise LineageBankError(f"{self.url} holds no lineage bank (add a model first)")
            lineage_metadata.create_all(conn, checkfirst=True)
            self._has_state = True

    def _bump(self, conn: Connection) -> None:
        """Advance the generation (inside the writing transaction, so readers see it with the change)."""
        if not self._has_state:
            lineage_state.create(conn, checkfirst=True)
            self._has_state = True
        if not conn.execute(update(lineage_state).where(lineage_state.c.id == 1)
                            .values(generation=lineage_state.c.generation + 1)).rowcount:
            conn.execute(insert(lineage_state).values(id=1, generation=1))

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        with transaction(self._engine, write=write,
                         wrap=lambda exc: LineageBankError(f"{self.url}: {db_error(exc)}")) as conn:
            yield conn

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
            self._bump(conn)
        return LineageModel(name, bank, model.total_params, len(model.tensors), model.format, added, source, note)

    def remove(self, name: str) -> bool:
        with self._tx(write=True) as conn:
            model_id = conn.execute(select(lineage_models.c.id).where(lineage_models.c.name == name)).scalar()
            if model_id is None:
                return False
            conn.execute(delete(lineage_tensors).where(lineage_tensors.c.model_id == model_id))
            conn.execute(delete(lineage_models).where(lineage_models.c.id == model_id))
            self._bump(conn)
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
        model is left out and described in `errors` (when given): one with an unreadable row of a shape the
        child has, or one that would have been a candidate.

        Exact: per shape key of the child, one matrix product of the child's sketches (and transposed sketches)
        with every bank sketch of that key gives all cosines; a reference row with any product within
        `CANDIDATE_SLACK` of the threshold is a candidate, and `compare` (the same function a pairwise check
        uses) decides per candidate reference over its candidate rows, with the reference's stored totals for
        coverage. The sketches come from the in-memory index (`_Index`, rebuilt when the bank's change counter
        moves; the counter is re-read at every search), or, for a bank larger than `index_rows` sketches, are
        streamed from the database in batches of `SCAN_BATCH_ROWS` (the same products, same answer)."""
        th = thresholds or Thresholds()
        if not child.tensors:
            return []
        keys: dict[str, builtins.list[TensorPrint]] = {}
        for t in child.tensors:
            keys.setdefault(shape_key(t.shape), []).append(t)
        with self._tx(write=False) as conn:
            index = self._current_index(conn)
            if index is not None:
                found, infos, corrupt = index.candidates(keys, th.min_cosine)
            else:
                found, infos, corrupt = self._scan_db(conn, keys, th.min_cosine)
        bad = set(corrupt)
        hits: builtins.list[SearchHit] = []
        for model_id in sorted(found):
            if model_id in bad:
                continue
            name, bank, params, count, fmt = infos[model_id]
            tensors = tuple(t for _, t in sorted(found[model_id], key=lambda p: p[0]))
            reference = ModelPrint(tensors=tensors, total_params=params, format=fmt, skipped=())
            lineage = compare(child, reference, th, reference_tensors=count)
            if lineage.matches:
                hits.append(SearchHit(name, bank, lineage))
        if errors is not None:
            errors.extend(corrupt[m] for m in sorted(corrupt))
        hits.sort(key=lambda h: (not h.lineage.descendant, -h.lineage.coverage,
                                 -max(m.cosine for m in h.lineage.matches), h.name))
        return hits[:top]

    # --- the in-memory index ----------------------------------------------------------------------------

    def _counter(self, conn: Connection) -> tuple[Any, ...]:
        """The bank's change counter: the generation row (bumped by every add and remove) plus count, max and
        sum of the model ids (which also catch a writer that does not bump the generation). One cheap query."""
        generation: Any = None
        if self._has_state:
            generation = conn.execute(select(lineage_state.c.generation).where(lineage_state.c.id == 1)).scalar()
        row = conn.execute(select(func.count(), func.max(lineage_models.c.id), func.sum(lineage_models.c.id))).one()
        return (generation, *tuple(row))

    def _current_index(self, conn: Connection) -> _Index | None:
        """The index for the bank as it is now (rebuilt when the counter moved), or None when the bank holds more
        than `index_rows` sketches (then the search streams from the database)."""
        counter = self._counter(conn)
        cached = self._cache  # (counter, index) swapped as one object: safe to share between threads
        if cached is not None and cached[0] == counter:
            return cached[1]
        self._cache = None
        index: _Index | None = None
        sketches = conn.execute(select(func.count(), func.count(lineage_tensors.c.transposed))).one()
        if int(sketches[0] or 0) + int(sketches[1] or 0) <= self.index_rows:
            index = _Index.load(conn)  # same transaction as the counter: the two agree
        self._cache = (counter, index)  # too big: None remembered, so the count is not redone until a change
        return index

    def _scan_db(self, conn: Connection, keys: dict[str, builtins.list[TensorPrint]], min_cosine: float) \
            -> tuple[dict[int, builtins.list[tuple[int, TensorPrint]]], dict[int, _Info], dict[int, str]]:
        """`_Index.candidates` for a bank too big to hold: the rows of the child's shape keys in batches."""
        found: dict[int, builtins.list[tuple[int, TensorPrint]]] = {}
        unreadable: set[int] = set()
        key_list = sorted(keys)
        for start in range(0, len(key_list), 500):
            q = select(lineage_tensors.c.id, lineage_tensors.c.model_id, lineage_tensors.c.name,
                       lineage_tensors.c.shape, lineage_tensors.c.shape_key, lineage_tensors.c.params,
                       lineage_tensors.c.sketch, lineage_tensors.c.transposed, lineage_tensors.c.code) \
                .where(lineage_tensors.c.shape_key.in_(key_list[start:start + 500])) \
                .order_by(lineage_tensors.c.shape_key, lineage_tensors.c.id)
            for batch in conn.execute(q.execution_options(yield_per=SCAN_BATCH_ROWS)).partitions():
                by_key: dict[str, builtins.list[tuple[int, int, TensorPrint]]] = {}
                for r in batch:
                    try:
                        t = _tensor("", r)
                    except LineageBankError:
                        unreadable.add(int(r.model_id))
                        continue
                    by_key.setdefault(r.shape_key, []).append((int(r.id), int(r.model_id), t))
                for key, rows in by_key.items():
                    block = _Block.build(rows)
                    for i in block.candidate_rows(keys[key], min_cosine):
                        found.setdefault(int(block.model[i]), []).append((int(block.row_id[i]), block.tensor(i)))
        infos: dict[int, _Info] = {}
        corrupt: dict[int, str] = {}
        ids = sorted(set(found) | unreadable)
        for start in range(0, len(ids), 500):
            for row in conn.execute(select(lineage_models).where(lineage_models.c.id.in_(ids[start:start + 500]))):
                infos[row.id] = (row.name, row.bank, int(row.params), int(row.tensors), row.format)
                try:  # a candidate is checked whole, as the index checks every model
                    self._load(conn, row)
                except LineageBankError as exc:
                    corrupt[row.id] = str(exc)
        for model_id in list(found):
            if model_id not in infos:  # rows of a model that is not there: not a reference
                del found[model_id]
        return found, infos, corrupt


_Info = tuple[str, str, int, int, "str | None"]
"""(name, bank, params, tensors, format) of a reference, from its `lineage_models` row."""


@dataclass
class _Block:
    """The reference rows of one shape key: float32 sketches as one matrix (row i ↔ model[i], row_id[i]), the
    transposed sketches of the rows that keep one (`t_rows` ↔ `transposed`), the codes as a uint8 matrix."""

    model: np.ndarray
    row_id: np.ndarray
    names: builtins.list[str]
    shapes: builtins.list[tuple[int, ...]]
    params: np.ndarray
    codes: np.ndarray
    sketch: np.ndarray
    t_rows: np.ndarray
    t_pos: np.ndarray
    """Per row: its index in `transposed`, −1 when it keeps none."""
    transposed: np.ndarray

    @classmethod
    def build(cls, rows: builtins.list[tuple[int, int, TensorPrint]]) -> _Block:
        with_t = [i for i, (_, _, t) in enumerate(rows) if t.transposed is not None]
        t_pos = np.full(len(rows), -1, dtype=np.int64)
        t_pos[with_t] = np.arange(len(with_t))
        return cls(
            model=np.array([m for _, m, _ in rows], dtype=np.int64),
            row_id=np.array([r for r, _, _ in rows], dtype=np.int64),
            names=[t.name for _, _, t in rows], shapes=[t.shape for _, _, t in rows],
            params=np.array([t.params for _, _, t in rows], dtype=np.int64),
            codes=np.frombuffer(b"".join(t.code for _, _, t in rows), dtype=np.uint8).reshape(len(rows), -1),
            sketch=np.stack([t.sketch for _, _, t in rows]).astype(np.float32, copy=False),
            t_rows=np.array(with_t, dtype=np.int64), t_pos=t_pos,
            transposed=np.stack([rows[i][2].transposed for i in with_t]).astype(np.float32, copy=False) if with_t
            else np.zeros((0, SKETCH_DIM), dtype=np.float32))

    def candidate_rows(self, children: builtins.list[TensorPrint], min_cosine: float) -> np.ndarray:
        """Rows with any product `compare` could use (sketch·sketch, child transposed·sketch, sketch·reference
        transposed) within `CANDIDATE_SLACK` of `min_cosine`: a superset of the rows `compare` pairs."""
        low = np.float32(min_cosine - CANDIDATE_SLACK)
        vectors = [c.sketch for c in children] + [c.transposed for c in children if c.transposed is not None]
        query = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
        hit: np.ndarray = np.asarray((self.sketch @ query.T >= low).any(axis=1))
        if len(self.t_rows):
            plain = np.stack([np.asarray(c.sketch, dtype=np.float32) for c in children])
            hit[self.t_rows[(self.transposed @ plain.T >= low).any(axis=1)]] = True
        return np.nonzero(hit)[0]

    def tensor(self, i: int) -> TensorPrint:
        at = int(self.t_pos[i])
        return TensorPrint(name=self.names[i], shape=self.shapes[i], params=int(self.params[i]),
                           sketch=self.sketch[i], code=self.codes[i].tobytes(),
                           transposed=self.transposed[at] if at >= 0 else None)

    @property
    def nbytes(self) -> int:
        return int(self.sketch.nbytes + self.transposed.nbytes + self.codes.nbytes + self.model.nbytes * 4)


@dataclass
class _Index:
    """Every readable reference row in memory, by shape key; models whose rows are corrupt (an unreadable row, or
    rows that do not add up to the model's stored totals) are kept aside with the message `get` would give."""

    blocks: dict[str, _Block]
    infos: dict[int, _Info]
    corrupt: dict[int, tuple[str, frozenset[str]]]
    """model id → (message, shape keys of its unreadable rows)."""

    @classmethod
    def load(cls, conn: Connection) -> _Index:
        infos: dict[int, _Info] = {}
        for row in conn.execute(select(lineage_models)):
            infos[row.id] = (row.name, row.bank, int(row.params), int(row.tensors), row.format)
        per_model: dict[int, builtins.list[tuple[int, str, TensorPrint]]] = {}
        corrupt: dict[int, tuple[str, frozenset[str]]] = {}
        bad_keys: dict[int, set[str]] = {}
        q = select(lineage_tensors).order_by(lineage_tensors.c.id)
        for r in conn.execute(q.execution_options(yield_per=SCAN_BATCH_ROWS)):
            info = infos.get(r.model_id)
            if info is None:
                continue
            try:
                t = _tensor(info[0], r)
            except LineageBankError as exc:
                if r.model_id not in corrupt:
                    corrupt[r.model_id] = (str(exc), frozenset())
                bad_keys.setdefault(r.model_id, set()).add(str(r.shape_key))
                continue
            per_model.setdefault(r.model_id, []).append((int(r.id), str(r.shape_key), t))
        by_key: dict[str, builtins.list[tuple[int, int, TensorPrint]]] = {}
        for model_id, (name, _bank, params, count, _fmt) in infos.items():
            rows = per_model.get(model_id, [])
            if model_id in corrupt:
                corrupt[model_id] = (corrupt[model_id][0], frozenset(bad_keys[model_id]))
            elif len(rows) != count or sum(t.params for _, _, t in rows) != params:
                corrupt[model_id] = (f"lineage model {name!r} is corrupt: {len(rows)} tensor rows, {count} expected",
                                     frozenset())
            for row_id, key, t in rows:  # a corrupt model's readable rows stay: a candidate there is reported
                by_key.setdefault(key, []).append((row_id, model_id, t))
        blocks = {key: _Block.build(rows) for key, rows in by_key.items()}
        return cls(blocks, infos, corrupt)

    def candidates(self, keys: dict[str, builtins.list[TensorPrint]], min_cosine: float) \
            -> tuple[dict[int, builtins.list[tuple[int, TensorPrint]]], dict[int, _Info], dict[int, str]]:
        found: dict[int, builtins.list[tuple[int, TensorPrint]]] = {}
        for key, children in keys.items():
            block = self.blocks.get(key)
            if block is None:
                continue
            for i in block.candidate_rows(children, min_cosine):
                found.setdefault(int(block.model[i]), []).append((int(block.row_id[i]), block.tensor(i)))
        corrupt = {m: message for m, (message, bad) in self.corrupt.items() if m in found or bad & keys.keys()}
        return found, self.infos, corrupt

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks.values())


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


