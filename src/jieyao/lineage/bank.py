"""Lineage banks: fingerprints of known models (no weights) in the hash-bank database, searched by shape.

Two tables of our own, created when missing, beside the bank store's (`jieyao.banks.schema`; no name clashes,
and `BankStore` ignores tables it does not own): `lineage_models` (one row per known model; names are unique
across all lineage banks, so "descendant of NAME" is never ambiguous) and `lineage_tensors` (per tensor: the
canonical shape, an indexed shape key, params, the sketch as float16 and the SimHash code).

A third, `lineage_state`, holds one generation number bumped by every add and remove (created when missing);
`lineage_schema` the schema version (`SCHEMA_VERSION`; an older bank is upgraded when opened, a newer refused).

Common tensors (the IDF table, lineage.md §3.4): every add searches the new model against the bank (the same
index) and records, per bank model it shares a tensor with, either that the two are a lineage pair
(`lineage_related`: one is a descendant of the other) or, for an unrelated pair, which tensors of each side
matched (`lineage_shared`). Families are the connected components of the lineage pairs (a base and its
registered resales); a tensor seen in `COMMON_MIN_MODELS` unrelated models (a family counted once, its own
included) is common: a copied constant, not lineage. At check time a child tensor that matches only common
tensors of a reference does not count toward m nor coverage (the common parameters leave its denominator too)
and is reported as "shared common tensor (seen in K unrelated bank models)". The counts are derived from the link
rows when a search finds the bank changed, so `remove` (which deletes the model's links) decrements them and a
family split by a removal is recounted exactly; `recount` rebuilds the links from the stored prints. Links are
one row per (tensor, unrelated model) pair: a constant copied into n unrelated models costs ~n² rows.

Search is exact (every same-shape pair's cosine, no SimHash cut): an in-memory index per canonical shape key
(`_Index`: all reference sketches of that key as one float32 matrix, rows → (model, tensor), the codes as a uint8
matrix) is loaded lazily from the database and rebuilt when the bank's change counter moves (the generation plus
count/max/sum of the model ids, re-read at every search: one cheap query, so a second process sharing the file
sees a change at its next search; an add through this handle appends to the held index instead). A search is
then one matrix product per shape key of the child, and `fingerprint.compare` runs only for the references with a
row near the threshold, over those rows, with the reference's stored totals for coverage. Memory: ~4.1 KB per
stored sketch (float32 row + 32 B code + ids), another 4 KB for a kept transposed sketch: a 12-tensor reference
~50 KB, 5,000 of them ~250 MB. A bank of more than `INDEX_MAX_SKETCHES` sketches is not held; its search streams
the same products from the database in batches (same answers, slower). A model whose rows are corrupt is reported
by name and left out; the rest still match."""

from __future__ import annotations

import builtins
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
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
    tensor_pairs,
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
lineage_schema = Table(
    "lineage_schema", lineage_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)
lineage_related = Table(
    "lineage_related", lineage_metadata,
    Column("model_id", Integer, ForeignKey("lineage_models.id", ondelete="CASCADE"), primary_key=True),
    Column("other_id", Integer, ForeignKey("lineage_models.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)
"""Pairs of bank models that are a lineage pair (one a descendant of the other by `compare`), model_id < other_id:
the edges of the families (a base and its registered resales) within which shared tensors are not common."""
lineage_shared = Table(
    "lineage_shared", lineage_metadata,
    Column("tensor_id", Integer, ForeignKey("lineage_tensors.id", ondelete="CASCADE"), primary_key=True),
    Column("other_id", Integer, ForeignKey("lineage_models.id", ondelete="CASCADE"), primary_key=True,
           index=True),
    Column("cosine", Float, nullable=False),
)
"""A bank tensor that matches (cosine >= the threshold) a tensor of `other_id`, a model not related to its own:
the IDF table's links (lineage.md §3.4). A tensor is common when it is seen in `COMMON_MIN_MODELS` unrelated
models, a family counted once (`_Commons`)."""
LINEAGE_TABLES = frozenset(lineage_metadata.tables)
REQUIRED_TABLES = frozenset({"lineage_models", "lineage_tensors"})
"""What makes a file a lineage bank; the other tables are added when missing (a bank written before them)."""
SCHEMA_VERSION = 2
"""1: models, tensors (and the generation, added without a version); 2: the common-tensor tables and this version.
An older bank is upgraded when opened (tables added, `recount` run); a newer one is refused."""
COMMON_MIN_MODELS = 3
"""A bank tensor seen in this many unrelated bank models (its own included, a family counted once) is common: a
copied constant (inswapper's `emap`, a fixed blur kernel) rather than lineage. Two unrelated models sharing a
tensor is left as evidence: one may have reused part of the other."""
MAX_SHARED_PER_ADD = 200_000
"""Bound on the `lineage_shared` rows one add (or one model of a recount) writes; past it the counts undercount
(a lower bound: fewer tensors are common). A copied constant in n unrelated models costs about n² rows."""

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


@dataclass(frozen=True)
class CommonTensor:
    model: str
    tensor: str
    shape: str
    models: int
    """Unrelated bank models the tensor is seen in (its own included, a family counted once)."""


@dataclass(frozen=True)
class RecountReport:
    models: int
    related_pairs: int
    shared_links: int
    common_tensors: int
    skipped: tuple[str, ...]
    """Models left out because their rows are corrupt (the message names each)."""


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
        self._commons_cache: tuple[tuple[Any, ...], _Commons] | None = None
        self._has_state = False
        self._adds = 0
        self.upgrade_error: str | None = None
        self.common_ready = True
        """False for an old bank that could not be upgraded (read-only): searched with no common-tensor table."""
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
        with self._tx(write=False) as conn:
            names = set(inspect(conn).get_table_names())
            version = self._version(conn, names)
        if names >= LINEAGE_TABLES and version == SCHEMA_VERSION:
            self._has_state = True
            return
        if not names >= REQUIRED_TABLES and not create:
            raise LineageBankError(f"{self.url} holds no lineage bank (add a model first)")
        try:
            self._upgrade()
        except LineageBankError as exc:
            if create or not names >= REQUIRED_TABLES:
                raise
            # an older bank we may not write (a read-only file): searched as it is, without common tensors
            self._has_state = "lineage_state" in names
            self.common_ready = False
            self.upgrade_error = str(exc)

    def _version(self, conn: Connection, names: set[str]) -> int:
        if "lineage_schema" not in names:
            return 1
        version = conn.execute(select(lineage_schema.c.version).where(lineage_schema.c.id == 1)).scalar()
        if version is None:
            return 1  # the row is gone: treated as an old bank (upgraded, table rebuilt)
        if not isinstance(version, int) or version < 1:
            raise LineageBankError(f"{self.url}: lineage schema version {version!r} is not valid")
        if version > SCHEMA_VERSION:
            raise LineageBankError(f"{self.url} has lineage bank schema version {version}, newer than this jieyao "
                                   f"understands ({SCHEMA_VERSION}); upgrade jieyao (nothing was changed)")
        return version

    def _upgrade(self) -> None:
        """Create what is missing and, for a bank older than `SCHEMA_VERSION`, build its common-tensor table (a
        recount: one search per model); one transaction, so a failure leaves the bank as it was."""
        with self._tx(write=True) as conn:
            names = set(inspect(conn).get_table_names())
            version = self._version(conn, names) if names >= REQUIRED_TABLES else SCHEMA_VERSION
            if names >= LINEAGE_TABLES and version == SCHEMA_VERSION:  # another process upgraded it meanwhile
                self._has_state = True
                return
            lineage_metadata.create_all(conn, checkfirst=True)
            self._has_state = True
            if version < SCHEMA_VERSION and conn.execute(select(func.count()).select_from(lineage_models)).scalar():
                self._recount(conn)
            if conn.execute(update(lineage_schema).where(lineage_schema.c.id == 1)
                            .values(version=SCHEMA_VERSION)).rowcount == 0:
                conn.execute(insert(lineage_schema).values(id=1, version=SCHEMA_VERSION))

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
            # the bank before this model, which its links are searched in: a handle's first add streams the new
            # model's shape keys from the database (a one-off `jieyao lineage add` loads no index); from the
            # second on, the index is held and appended to (a bulk import stays O(its rows) per add)
            self._adds += 1
            cached = self._cache
            if self._adds > 1 or (cached is not None and cached[0] == self._counter(conn)):
                index = self._current_index(conn)
            else:
                index = None
            model_id = conn.execute(insert(lineage_models).values(
                name=name, bank=bank, params=model.total_params, tensors=len(model.tensors),
                format=model.format, added=added, source=source, note=note)).inserted_primary_key
            if model_id is None:
                raise LineageBankError(f"{name}: the database returned no id for the new model")
            model_id = model_id[0]
            rows = [_tensor_row(model_id, t) for t in model.tensors]
            conn.execute(insert(lineage_tensors), rows)
            row_ids = self._row_ids(conn, model_id)
            # as the database holds it (float16 sketches): links and the held index agree with a reload, a recount
            stored = ModelPrint(tensors=tuple(_tensor(name, SimpleNamespace(**r)) for r in rows),
                                total_params=model.total_params, format=model.format, skipped=())
            if self.common_ready:
                self._link(conn, model_id, row_ids, stored, index)
            self._bump(conn)
        # after the commit, so a search on another thread never sees a model that could still be rolled back
        cached = self._cache
        if index is not None and cached is not None and cached[1] is index:
            # keep the held index current (appending is cheap; reloading it per add would be O(bank)); the
            # counter moves as `_counter` would read it (generation +1, count +1, max and sum of ids)
            index.append(model_id, (name, bank, model.total_params, len(model.tensors), model.format),
                         list(zip(row_ids, stored.tensors, strict=True)))
            held = sum(b.n + b.t_n for b in index.blocks.values())
            gen, count, top, total = cached[0]
            counter = ((gen or 0) + 1, (count or 0) + 1, max(top or 0, model_id), (total or 0) + model_id)
            self._cache = (counter, index) if held <= self.index_rows else None
        return LineageModel(name, bank, model.total_params, len(model.tensors), model.format, added, source, note)

    def remove(self, name: str) -> bool:
        """Forget a model; its links go with it, so the common counts of the tensors it shared drop by it."""
        with self._tx(write=True) as conn:
            model_id = conn.execute(select(lineage_models.c.id).where(lineage_models.c.name == name)).scalar()
            if model_id is None:
                return False
            if self.common_ready:
                tensor_ids = select(lineage_tensors.c.id).where(lineage_tensors.c.model_id == model_id)
                conn.execute(delete(lineage_shared).where(lineage_shared.c.tensor_id.in_(tensor_ids)))
                conn.execute(delete(lineage_shared).where(lineage_shared.c.other_id == model_id))
                conn.execute(delete(lineage_related).where((lineage_related.c.model_id == model_id)
                                                           | (lineage_related.c.other_id == model_id)))
            conn.execute(delete(lineage_tensors).where(lineage_tensors.c.model_id == model_id))
            conn.execute(delete(lineage_models).where(lineage_models.c.id == model_id))
            self._bump(conn)
        return True

    def recount(self) -> RecountReport:
        """Rebuild the common-tensor table from the stored prints (one search per model): after a crash, a
        hand-edited or upgraded bank, or a change of `MAX_SHARED_PER_ADD`."""
        if not self.common_ready:
            self._upgrade()
            self.common_ready = True
            self.upgrade_error = None
        with self._tx(write=True) as conn:
            report = self._recount(conn)
            self._bump(conn)
        return report

    def _recount(self, conn: Connection) -> RecountReport:
        conn.execute(delete(lineage_shared))
        conn.execute(delete(lineage_related))
        sketches = conn.execute(select(func.count(), func.count(lineage_tensors.c.transposed))).one()
        held = int(sketches[0] or 0) + int(sketches[1] or 0) <= self.index_rows
        index = _Index.load(conn) if held else None  # each pair is linked once, from its newer model
        skipped: builtins.list[str] = []
        for row in conn.execute(select(lineage_models).order_by(lineage_models.c.id)).all():
            try:
                model = self._load(conn, row)
            except LineageBankError as exc:
                skipped.append(str(exc))
                continue
            self._link(conn, row.id, self._row_ids(conn, row.id), model, index, below=row.id)
        commons = _Commons.load(conn)
        related = int(conn.execute(select(func.count()).select_from(lineage_related)).scalar() or 0)
        links = int(conn.execute(select(func.count()).select_from(lineage_shared)).scalar() or 0)
        models = int(conn.execute(select(func.count()).select_from(lineage_models)).scalar() or 0)
        return RecountReport(models=models - len(skipped), related_pairs=related, shared_links=links,
                             common_tensors=len(commons.count), skipped=tuple(skipped))

    @staticmethod
    def _row_ids(conn: Connection, model_id: int) -> builtins.list[int]:
        return [int(i) for i in conn.execute(select(lineage_tensors.c.id).where(lineage_tensors.c.model_id == model_id)
                                             .order_by(lineage_tensors.c.id)).scalars()]

    def _link(self, conn: Connection, model_id: int, row_ids: builtins.list[int], model: ModelPrint,
              index: _Index | None, below: int | None = None) -> None:
        """Write the new model's links to the bank models it shares a tensor with (ids under `below` only, for a
        recount): a lineage pair (either a descendant of the other, by `compare` with no common tensors left
        out) goes to `lineage_related`; otherwise every tensor of either side in a pair at cosine >= the
        threshold gets a `lineage_shared` row naming the other model."""
        th = Thresholds()
        keys: dict[str, builtins.list[TensorPrint]] = {}
        for t in model.tensors:
            keys.setdefault(shape_key(t.shape), []).append(t)
        if index is not None:
            found, infos, corrupt = index.candidates(keys, th.min_cosine)
        else:
            found, infos, corrupt = self._scan_db(conn, keys, th.min_cosine)
        related: builtins.list[dict[str, int]] = []
        shared: dict[tuple[int, int], float] = {}
        for other in sorted(found):
            if other == model_id or other in corrupt or other not in infos or (below is not None and other >= below):
                continue
            _name, _bank, params, count, fmt = infos[other]
            rows = sorted(found[other], key=lambda p: p[0])
            ref = ModelPrint(tensors=tuple(t for _, t in rows), total_params=params, format=fmt, skipped=())
            pairs = tensor_pairs(model, ref, th.min_cosine)
            if not pairs:
                continue
            if compare(model, ref, th, reference_tensors=count).descendant or compare(ref, model, th).descendant:
                related.append({"model_id": min(model_id, other), "other_id": max(model_id, other)})
                continue
            for cos, i, j in pairs:
                for key in ((row_ids[j], other), (rows[i][0], model_id)):
                    shared[key] = max(cos, shared.get(key, -1.0))
            if len(shared) >= MAX_SHARED_PER_ADD:
                break
        if related:
            conn.execute(insert(lineage_related), related)
        if shared:
            conn.execute(insert(lineage_shared), [{"tensor_id": t, "other_id": o, "cosine": round(c, 4)}
                                                  for (t, o), c in sorted(shared.items())[:MAX_SHARED_PER_ADD]])

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
            counter = self._counter(conn)
            index = self._current_index(conn, counter)
            if index is not None:
                found, infos, corrupt = index.candidates(keys, th.min_cosine)
            else:
                found, infos, corrupt = self._scan_db(conn, keys, th.min_cosine)
            commons = self._current_commons(conn, counter)
        bad = set(corrupt)
        hits: builtins.list[SearchHit] = []
        for model_id in sorted(found):
            if model_id in bad:
                continue
            name, bank, params, count, fmt = infos[model_id]
            rows = sorted(found[model_id], key=lambda p: p[0])
            reference = ModelPrint(tensors=tuple(t for _, t in rows), total_params=params, format=fmt, skipped=())
            marks = {k: commons.count[r] for k, (r, _) in enumerate(rows) if r in commons.count}
            lineage = compare(child, reference, th, reference_tensors=count, common=marks,
                              common_params=commons.params.get(model_id, 0))
            if lineage.matches or lineage.common:
                hits.append(SearchHit(name, bank, lineage))
        if errors is not None:
            errors.extend(corrupt[m] for m in sorted(corrupt))
        hits.sort(key=lambda h: (not h.lineage.descendant, -h.lineage.coverage,
                                 -max(m.cosine for m in h.lineage.matches or h.lineage.common), h.name))
        return hits[:top]

    def common_tensors(self) -> builtins.list[CommonTensor]:
        """The bank's common tensors (for `jieyao lineage list --common`), most widely seen first."""
        with self._tx(write=False) as conn:
            commons = self._current_commons(conn, self._counter(conn))
            if not commons.count:
                return []
            out: builtins.list[CommonTensor] = []
            ids = sorted(commons.count)
            for start in range(0, len(ids), 500):
                q = select(lineage_tensors.c.id, lineage_tensors.c.name, lineage_tensors.c.shape,
                           lineage_models.c.name.label("model")) \
                    .join(lineage_models, lineage_models.c.id == lineage_tensors.c.model_id) \
                    .where(lineage_tensors.c.id.in_(ids[start:start + 500]))
                out.extend(CommonTensor(str(r.model), str(r.name), str(r.shape), commons.count[r.id])
                           for r in conn.execute(q))
        return sorted(out, key=lambda c: (-c.models, c.model, c.tensor))

    def _current_commons(self, conn: Connection, counter: tuple[Any, ...]) -> _Commons:
        if not self.common_ready:
            return _Commons({}, {})
        cached = self._commons_cache
        if cached is not None and cached[0] == counter:
            return cached[1]
        commons = _Commons.load(conn)
        self._commons_cache = (counter, commons)
        return commons

    # --- the in-memory index ----------------------------------------------------------------------------

    def _counter(self, conn: Connection) -> tuple[Any, ...]:
        """The bank's change counter: the generation row (bumped by every add and remove) plus count, max and
        sum of the model ids (which also catch a writer that does not bump the generation). One cheap query."""
        generation: Any = None
        if self._has_state:
            generation = conn.execute(select(lineage_state.c.generation).where(lineage_state.c.id == 1)).scalar()
        row = conn.execute(select(func.count(), func.max(lineage_models.c.id), func.sum(lineage_models.c.id))).one()
        return (generation, *tuple(row))

    def _current_index(self, conn: Connection, counter: tuple[Any, ...] | None = None) -> _Index | None:
        """The index for the bank as it is now (rebuilt when the counter moved), or None when the bank holds more
        than `index_rows` sketches (then the search streams from the database)."""
        counter = counter if counter is not None else self._counter(conn)
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
    transposed sketches of the rows that keep one (`t_rows` ↔ `transposed`), the codes as a uint8 matrix. The
    arrays have spare capacity (doubled when full) so an add appends in amortised O(its rows); the first `n`
    (`t_n`) rows are valid."""

    n: int
    t_n: int
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
        block = cls(n=0, t_n=0, model=np.zeros(0, np.int64), row_id=np.zeros(0, np.int64), names=[], shapes=[],
                    params=np.zeros(0, np.int64), codes=np.zeros((0, CODE_BITS // 8), np.uint8),
                    sketch=np.zeros((0, SKETCH_DIM), np.float32), t_rows=np.zeros(0, np.int64),
                    t_pos=np.zeros(0, np.int64), transposed=np.zeros((0, SKETCH_DIM), np.float32))
        block.extend(rows, spare=False)
        return block

    def extend(self, rows: builtins.list[tuple[int, int, TensorPrint]], *, spare: bool = True) -> None:
        with_t = [t for _, _, t in rows if t.transposed is not None]
        n, t_n = self.n + len(rows), self.t_n + len(with_t)
        if n > len(self.model):
            cap = max(n, 2 * len(self.model)) if spare else n
            self.model, self.row_id, self.params, self.t_pos, self.codes, self.sketch = (
                _grown(a, cap) for a in (self.model, self.row_id, self.params, self.t_pos, self.codes, self.sketch))
        if t_n > len(self.t_rows):
            cap = max(t_n, 2 * len(self.t_rows)) if spare else t_n
            self.t_rows, self.transposed = _grown(self.t_rows, cap), _grown(self.transposed, cap)
        at, t_at = self.n, self.t_n
        for row_id, model_id, t in rows:
            self.model[at], self.row_id[at], self.params[at] = model_id, row_id, t.params
            self.names.append(t.name)
            self.shapes.append(t.shape)
            self.codes[at] = np.frombuffer(t.code, dtype=np.uint8)
            self.sketch[at] = t.sketch
            if t.transposed is not None:
                self.t_rows[t_at], self.t_pos[at] = at, t_at
                self.transposed[t_at] = t.transposed
                t_at += 1
            else:
                self.t_pos[at] = -1
            at += 1
        self.n, self.t_n = n, t_n

    def candidate_rows(self, children: builtins.list[TensorPrint], min_cosine: float) -> np.ndarray:
        """Rows with any product `compare` could use (sketch·sketch, child transposed·sketch, sketch·reference
        transposed) within `CANDIDATE_SLACK` of `min_cosine`: a superset of the rows `compare` pairs."""
        low = np.float32(min_cosine - CANDIDATE_SLACK)
        vectors = [c.sketch for c in children] + [c.transposed for c in children if c.transposed is not None]
        query = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
        hit: np.ndarray = np.asarray((self.sketch[:self.n] @ query.T >= low).any(axis=1))
        if self.t_n:
            plain = np.stack([np.asarray(c.sketch, dtype=np.float32) for c in children])
            hit[self.t_rows[:self.t_n][(self.transposed[:self.t_n] @ plain.T >= low).any(axis=1)]] = True
        return np.nonzero(hit)[0]

    def tensor(self, i: int) -> TensorPrint:
        at = int(self.t_pos[i])
        return TensorPrint(name=self.names[i], shape=self.shapes[i], params=int(self.params[i]),
                           sketch=self.sketch[i], code=self.codes[i].tobytes(),
                           transposed=self.transposed[at] if at >= 0 else None)

    @property
    def nbytes(self) -> int:
        return int(self.sketch.nbytes + self.transposed.nbytes + self.codes.nbytes + self.model.nbytes * 4)


def _grown(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *a.shape[1:]), dtype=a.dtype)
    out[:len(a)] = a
    return out


@dataclass
class _Index:
    """Every readable reference row in memory, by shape key; models whose rows are corrupt (an unreadable row, or
    rows that do not add up to the model's stored totals) are kept aside with the message `get` would give."""

    blocks: dict[str, _Block]
    infos: dict[int, _Info]
    corrupt: dict[int, tuple[str, frozenset[str]]]
    """model id → (message, shape keys of its unreadable rows)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by `candidates` and `append`: a search sharing the handle never sees half an appended model."""

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
        with self.lock:
            for key, children in keys.items():
                block = self.blocks.get(key)
                if block is None:
                    continue
                for i in block.candidate_rows(children, min_cosine):
                    found.setdefault(int(block.model[i]), []).append((int(block.row_id[i]), block.tensor(i)))
        corrupt = {m: message for m, (message, bad) in self.corrupt.items() if m in found or bad & keys.keys()}
        return found, self.infos, corrupt  # infos only grows (under the lock): every found model is in it

    def append(self, model_id: int, info: _Info, rows: builtins.list[tuple[int, TensorPrint]]) -> None:
        """A model just added (its rows, in id order), so the held index stays current without a reload."""
        by_key: dict[str, builtins.list[tuple[int, int, TensorPrint]]] = {}
        for row_id, t in rows:
            by_key.setdefault(shape_key(t.shape), []).append((row_id, model_id, t))
        with self.lock:
            self.infos[model_id] = info
            for key, block_rows in by_key.items():
                block = self.blocks.get(key)
                if block is None:
                    self.blocks[key] = _Block.build(block_rows)
                else:
                    block.extend(block_rows)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks.values())


MAX_LINK_ROWS_READ = 20_000_000
"""Bound on the link rows read to compute the common counts (~50 bytes each in memory while counted)."""


@dataclass
class _Commons:
    """The common tensors of the bank as it is now, from the link tables: families are the connected components
    of `lineage_related`; a tensor's count is 1 + the families other than its own that hold a model it matches.
    Only counts >= `COMMON_MIN_MODELS` are kept. Rows that do not make sense (a model or tensor that is not
    there, a value that is not an id, a link inside one family) are ignored: a corrupt row can only leave a
    tensor uncounted, never break a search."""

    count: dict[int, int]
    """tensor id → unrelated bank models it is seen in (common tensors only)."""
    params: dict[int, int]
    """model id → parameters in its common tensors (left out of the coverage denominator)."""

    @classmethod
    def load(cls, conn: Connection) -> _Commons:
        models = {int(i) for i in conn.execute(select(lineage_models.c.id)).scalars() if isinstance(i, int)}
        parent = {m: m for m in models}

        def find(m: int) -> int:
            while parent[m] != m:
                parent[m] = parent[parent[m]]
                m = parent[m]
            return m

        for a, b in conn.execute(select(lineage_related.c.model_id, lineage_related.c.other_id)
                                 .limit(MAX_LINK_ROWS_READ)):
            if isinstance(a, int) and isinstance(b, int) and a in parent and b in parent:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        seen: dict[int, set[int]] = {}
        owner: dict[int, tuple[int, int]] = {}
        q = select(lineage_shared.c.tensor_id, lineage_shared.c.other_id, lineage_tensors.c.model_id,
                   lineage_tensors.c.params) \
            .join(lineage_tensors, lineage_tensors.c.id == lineage_shared.c.tensor_id).limit(MAX_LINK_ROWS_READ)
        for tensor_id, other, own, params in conn.execute(q):
            if not all(isinstance(v, int) for v in (tensor_id, other, own, params)) or other not in parent \
                    or own not in parent or params < 0:
                continue
            family, own_family = find(other), find(own)
            if family != own_family:
                seen.setdefault(tensor_id, set()).add(family)
                owner[tensor_id] = (own, params)
        count = {t: 1 + len(f) for t, f in seen.items() if 1 + len(f) >= COMMON_MIN_MODELS}
        per_model: dict[int, int] = {}
        for t in count:
            own, params = owner[t]
            per_model[own] = per_model.get(own, 0) + params
        return cls(count, per_model)


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


