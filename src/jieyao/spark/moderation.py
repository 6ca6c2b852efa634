"""Moderate a table of listings on Spark: text column(s) in, the moderation result as typed columns out.

Runs through `mapInArrow`, so rows reach Python in Arrow batches and leave the same way; each Python worker
process builds one `Moderator` per configuration (its lexicon automata and fold tables are the expensive
part) and keeps it for every later batch and task. One column is moderated as `Moderator.moderate(text)`,
several as `moderate_listing({column: value})`, exactly as `jieyao moderate` treats `{"text"}` and
`{"title", "description"}` records; `result` holds the same JSON `jieyao moderate` prints for the row."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jieyao.spark.shipping import Shipment

if TYPE_CHECKING:
    from jieyao.text import Moderator
    from jieyao.text.result import ModerationResult

MODERATION_COLUMNS = ("decision", "labels", "score", "hits", "contacts", "rules", "evasion", "error", "result",
                      "versions")
MODERATION_SCHEMA = ("decision string, labels array<string>, score double, hits string, contacts string, "
                     "rules array<string>, evasion array<string>, error string, result string, "
                     "versions map<string,string>")


@dataclass(frozen=True)
class ModerationJob:
    """The moderator a worker builds: the shipped lexicon and rule files, and the engine's options."""

    shipment: Shipment = field(default_factory=Shipment)
    include_builtin: bool = True
    max_chars: int | None = None

    @property
    def key(self) -> str:
        return json.dumps([self.shipment.key, self.include_builtin, self.max_chars])


@dataclass
class _Engine:
    moderator: Moderator
    versions: dict[str, str]


_ENGINES: dict[str, _Engine] = {}
"""One Moderator per configuration per Python worker process (workers are reused across tasks)."""


def engine_for(job: ModerationJob) -> _Engine:
    found = _ENGINES.get(job.key)
    if found is None:
        from jieyao.text import Moderator

        kwargs: dict[str, Any] = {"include_builtin": job.include_builtin}
        if job.max_chars is not None:
            kwargs["max_chars"] = job.max_chars
        moderator = Moderator(lexicon_paths=job.shipment.paths("lexicon"),
                              rules_paths=job.shipment.paths("moderation_rules"), **kwargs)
        builtin = {k: v for k, v in moderator.versions.items() if k.startswith("builtin:")}
        if len(_ENGINES) >= 4:
            _ENGINES.clear()
        found = _ENGINES[job.key] = _Engine(moderator, {**job.shipment.versions(rule_pack=False), **builtin})
    return found


def moderate_value(moderator: Moderator, columns: Sequence[str], values: Sequence[Any],
                   id: str | None) -> ModerationResult:
    """One row, as `jieyao moderate` would moderate the record: a null field is absent (as a JSONL record
    without it), a lone `text` (or a lone column) is moderated as plain text, several as a listing."""
    fields = {c: v if isinstance(v, str) else str(v) for c, v in zip(columns, values, strict=True) if v is not None}
    if len(columns) == 1 or not fields:
        return moderator.moderate(next(iter(fields.values()), ""), id=id)
    if list(fields) == ["text"]:
        return moderator.moderate(fields["text"], id=id)
    return moderator.moderate_listing(fields, id=id)


def _columns(result: ModerationResult, versions: list[tuple[str, str]]) -> dict[str, Any]:
    doc = result.to_dict()
    return {"decision": doc["decision"], "labels": doc["labels"], "score": doc["score"],
            "hits": json.dumps(doc["hits"], ensure_ascii=False),
            "contacts": json.dumps(doc["contacts"], ensure_ascii=False),
            "rules": [r["id"] for r in doc["rules"]], "evasion": doc["evasion"], "error": result.error,
            "result": json.dumps(doc, ensure_ascii=False), "versions": versions}


def _arrow_types() -> dict[str, Any]:
    import pyarrow as pa

    text_list = pa.list_(pa.string())
    return {"decision": pa.string(), "labels": text_list, "score": pa.float64(), "hits": pa.string(),
            "contacts": pa.string(), "rules": text_list, "evasion": text_list, "error": pa.string(),
            "result": pa.string(), "versions": pa.map_(pa.string(), pa.string())}


def _moderate_batches(batches: Iterator[Any], job: ModerationJob, columns: Sequence[str], id_column: str | None,
                      prefix: str) -> Iterator[Any]:
    import pyarrow as pa

    engine = engine_for(job)
    moderator = engine.moderator
    versions = list(engine.versions.items())
    types = _arrow_types()
    for batch in batches:
        names = batch.schema.names
        texts = [batch.column(names.index(c)).to_pylist() for c in columns]
        ids = (batch.column(names.index(id_column)).to_pylist() if id_column else [None] * batch.num_rows)
        out: dict[str, list[Any]] = {c: [] for c in MODERATION_COLUMNS}
        for i, row_id in enumerate(ids):
            result = moderate_value(moderator, columns, [t[i] for t in texts], None if row_id is None else str(row_id))
            for name, value in _columns(result, versions).items():
                out[name].append(value)
        arrays = [batch.column(i) for i in range(batch.num_columns)]
        arrays += [pa.array(out[c], type=types[c]) for c in MODERATION_COLUMNS]
        yield pa.RecordBatch.from_arrays(arrays, names=[*names, *(prefix + c for c in MODERATION_COLUMNS)])


def output_schema(input_schema: Any, prefix: str) -> Any:
    from pyspark.sql.types import StructField, StructType, _parse_datatype_string

    result = _parse_datatype_string(MODERATION_SCHEMA)
    assert isinstance(result, StructType)
    return StructType([*input_schema.fields, *(StructField(prefix + f.name, f.dataType, f.nullable)
                                                for f in result.fields)])


def moderate_dataframe(df: Any, columns: str | Sequence[str], job: ModerationJob | None = None, *,
                       id_column: str | None = None, prefix: str = "", partitions: int | None = None) -> Any:
    """`df` with the moderation result of its text column(s) added as `prefix` + MODERATION_COLUMNS
    (decision, labels, score, hits and contacts as JSON, rule ids, evasions, error, the whole JSON, versions).
    `partitions` spreads the rows over that many tasks first (a shuffle; a big table's own partitions will do)."""
    job = job or ModerationJob()
    cols = [columns] if isinstance(columns, str) else list(columns)
    if not cols:
        raise ValueError("no text column given")
    missing = [c for c in [*cols, *([id_column] if id_column else [])] if c not in df.columns]
    if missing:
        raise ValueError(f"no column {', '.join(map(repr, missing))} in the DataFrame "
                         f"(columns: {', '.join(df.columns)})")
    clash = [prefix + c for c in MODERATION_COLUMNS if prefix + c in df.columns]
    if clash:
        raise ValueError(f"the DataFrame already has column(s) {', '.join(clash)}: pass a prefix, e.g. 'mod_'")
    if partitions:
        df = df.repartition(partitions)
    return df.mapInArrow(lambda it: _moderate_batches(it, job, cols, id_column, prefix),
                         output_schema(df.schema, prefix))
