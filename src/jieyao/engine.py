"""The scanning engine: open a target, sniff it, let recognisers look, and recurse into containers,
all inside one target's limits. Every failure becomes an explained finding or the target's `error`;
nothing raised here stops the rest of a batch."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from jieyao.intake.blob import CHUNK, Blob, BlobWriter, BytesBlob, open_file_blob
from jieyao.intake.containers.base import (
    Container,
    ContainerError,
    Entry,
    EntryKind,
    OpenContext,
    basename,
    display_name,
    unsafe_name_reasons,
)
from jieyao.intake.sniff import sniff
from jieyao.intake.walk import list_tree
from jieyao.limits import Budget, LimitHit, ScanLimits
from jieyao.model import Category, Decision, Finding, TargetResult, join_member
from jieyao.recognise.base import DIRECTORY, Item, Recogniser
from jieyao.registry import is_container_format, open_container

MAX_LISTED_NAMES = 5
LISTED_NAMES = 100_000
"""Entries of a container's listing shown to recognisers. Names cost nothing once listed, and a build's
tell-tale files may sit past the first max_members entries of a 7z; only max_members are extracted."""
FOLDER_DEPTH = 6
"""Levels of a folder's layout shown to layout recognisers (a build's tell-tale files sit near the top)."""


@dataclass
class _TargetState:
    result: TargetResult
    budget: Budget
    spool: Callable[[], str]
    findings: list[Finding] = field(default_factory=list)

    def add(self, rule: str, category: Category, decision: Decision, member: str | None,
            *evidence: str, sha256: str | None = None) -> None:
        self.findings.append(Finding(rule=rule, category=category, decision=decision, member=member,
                                     evidence=tuple(evidence), sha256=sha256))


def limit_finding(hit: LimitHit, member: str | None, *more: str) -> Finding:
    return Finding(rule=f"limit.{hit.kind}", category=Category.LIMIT, decision=Decision.REVIEW,
                   member=member, evidence=(hit.message, *more))


def _intake_category(rule: str) -> Category:
    return Category.LIMIT if rule.startswith("limit.") else Category.INTAKE


def _intake_decision(rule: str) -> Decision:
    return Decision.PASS if rule in ("intake.sfx", "intake.pe_overlay") else Decision.REVIEW


def _names(entries: Sequence[Entry]) -> str:
    shown = ", ".join(repr(e.name) for e in entries[:MAX_LISTED_NAMES])
    more = len(entries) - MAX_LISTED_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _top_level(path: str, limit: int) -> list[tuple[str, bool]]:
    """A folder's own entries (name, is_dir), symlinks not followed; unreadable folders give none."""
    out: list[tuple[str, bool]] = []
    try:
        with os.scandir(path) as it:
            for e in it:
                if len(out) >= limit:
                    break
                try:
                    out.append((e.name, e.is_dir(follow_symlinks=False)))
                except OSError:
                    continue
    except OSError:
        return []
    return out


class Scanner:
    """Scans targets one at a time; reusable, and cheap to keep per worker process."""

    def __init__(self, limits: ScanLimits | None = None, recognisers: Sequence[Recogniser] = ()) -> None:
        self.limits = limits or ScanLimits()
        self.recognisers = list(recognisers)
        self._tmp: str | None = None
        self._buf = bytearray(CHUNK)

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _spool_dir(self) -> str:
        """Made on first need (most scans never spill to disk) and removed by close()."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="jieyao-")  # mode 0700: private to this user
        return self._tmp

    # -- entry points ---------------------------------------------------------------------------

    def scan_path(self, path: str, display: str | None = None) -> TargetResult:
        result = TargetResult(path=display or path)
        started = time.monotonic()
        try:
            blob = open_file_blob(path, self.limits, self._buf)
        except FileNotFoundError:
            result.error = "file vanished before it could be read (no such file)"
        except PermissionError as exc:
            result.error = f"permission denied: {exc.strerror or exc}"
        except OSError as exc:
            result.error = f"cannot read: {exc.strerror or exc}"
        else:
            try:
                result.bytes_read = blob.size
                if blob.truncated:
                    result.findings.append(Finding(
                        rule="limit.file_bytes", category=Category.LIMIT, decision=Decision.REVIEW,
                        evidence=(f"file is larger than max_file_bytes={self.limits.max_file_bytes}: "
                                  "not hashed, only its structure was read",)))
                self._scan_target(result, blob, basename(path))
            finally:
                blob.close()
        result.seconds = time.monotonic() - started
        return result

    @property
    def wants_folders(self) -> bool:
        return any(r.wants_folders for r in self.recognisers)

    def scan_folder(self, path: str) -> TargetResult | None:
        """Show a folder's layout (bounded, symlinks not followed) to the recognisers that look at
        layouts: a software build or a face-swap workspace is recognised from its file names. Returns
        None when nothing was found, so folders only appear in reports when they matter."""
        if not self.wants_folders:
            return None
        started = time.monotonic()
        top = _top_level(path, self.limits.max_members)
        wanting = [r for r in self.recognisers if r.wants_folders and r.wants_folder(top)]
        if not wanting:
            return None
        listing, cut = list_tree(path, self.limits.max_members, min(self.limits.max_depth, FOLDER_DEPTH))
        children = tuple(Entry(name=display_name(e.name), kind=EntryKind.DIR if e.is_dir else EntryKind.FILE,
                               size=e.size) for e in listing)
        result = TargetResult(path=path, format=DIRECTORY, size=0)
        st = _TargetState(result, Budget(self.limits), self._spool_dir)
        item = Item(target=path, member=None, name=basename(os.path.abspath(path)), format=DIRECTORY,
                    blob=BytesBlob(b""), sha256=None, size=0, depth=0, children=children)
        for recogniser in wanting:
            try:
                self._recognise_one(st, recogniser, item)
            except LimitHit as hit:  # a recogniser's own bound: reported, and the walk goes on
                st.findings.append(limit_finding(hit, None))
        if not st.findings:
            return None
        if cut:
            st.findings.append(limit_finding(LimitHit(
                "members", "member", f"folder layout listed only to {len(listing)} entries and {FOLDER_DEPTH} "
                                     "levels"), None))
        result.findings.extend(st.findings)
        result.seconds = time.monotonic() - started
        return result

    def scan_bytes(self, name: str, data: bytes) -> TargetResult:
        import hashlib

        result = TargetResult(path=name)
        started = time.monotonic()
        blob = BytesBlob(bytes(data), sha256=hashlib.sha256(data).hexdigest())
        result.bytes_read = blob.size
        self._scan_target(result, blob, basename(name))
        result.seconds = time.monotonic() - started
        return result

    # -- one target -----------------------------------------------------------------------------

    def _scan_target(self, result: TargetResult, blob: Blob, name: str) -> None:
        st = _TargetState(result, Budget(self.limits), self._spool_dir)
        result.size = blob.size
        result.sha256 = blob.sha256
        try:
            self._scan_item(st, blob, None, name, 0, (), None)
        except LimitHit as hit:
            st.findings.append(limit_finding(
                hit, None, f"scan of this target stopped after {result.members} members; the rest is unscanned"))
        except Exception as exc:  # a bug must not take the batch down; it is reported as an error
            result.error = f"internal error while scanning: {type(exc).__name__}: {exc}"
        result.findings.extend(st.findings)
        result.bytes_extracted = st.budget.extracted

    def _scan_item(self, st: _TargetState, blob: Blob, member: str | None, name: str, depth: int,
                   siblings: tuple[Entry, ...], container_format: str | None) -> None:
        st.budget.check_time()
        fmt = sniff(blob.head(), blob.size)
        if member is None:
            st.result.format = fmt
        container: Container | None = None
        entries: list[Entry] = []
        if is_container_format(fmt) and not blob.truncated:
            if depth >= self.limits.max_depth:
                st.findings.append(limit_finding(
                    LimitHit("depth", "member", f"{fmt} container nested deeper than max_depth="
                                                f"{self.limits.max_depth}; not opened"), member))
            else:
                container, entries = self._open(st, fmt, blob, member, name)
        item = Item(target=st.result.path, member=member, name=name, format=fmt, blob=blob,
                    sha256=blob.sha256, size=blob.size, depth=depth, siblings=siblings,
                    children=tuple(entries[:LISTED_NAMES]) if container else None,
                    container_format=container_format)
        start = len(st.findings)
        self._recognise(st, item)
        if container is not None:
            try:
                self._walk(st, container, entries, member, depth)
            finally:
                container.close()
            self._summarise(st, item, st.findings[start:])

    def _summarise(self, st: _TargetState, item: Item, inner: list[Finding]) -> None:
        if not inner:
            return
        for recogniser in self.recognisers:
            try:
                st.findings.extend(recogniser.summarise(item, inner))
            except Exception as exc:
                st.add("intake.recogniser_error", Category.INTAKE, Decision.REVIEW, item.member,
                       f"recogniser {recogniser.name!r} failed summarising this {item.format}: "
                       f"{type(exc).__name__}: {exc}")

    def _open(self, st: _TargetState, fmt: str, blob: Blob, member: str | None,
              name: str) -> tuple[Container | None, list[Entry]]:
        ctx = OpenContext(self.limits, st.spool, name, st.budget.check_time)
        container = None
        try:
            container = open_container(fmt, blob, ctx)
            if container is None:
                return None, []
            return container, container.entries()
        except ContainerError as exc:
            self._container_failed(st, fmt, member, exc.rule, exc.message)
        except LimitHit:
            raise
        except Exception as exc:  # hostile headers make libraries raise anything
            self._container_failed(st, fmt, member, "intake.corrupt",
                                   f"corrupt {fmt}: {type(exc).__name__}: {exc}")
        if container is not None:
            container.close()
        return None, []

    def _container_failed(self, st: _TargetState, fmt: str, member: str | None, rule: str, message: str) -> None:
        if member is None and rule == "intake.corrupt":
            st.result.error = message  # the target itself could not be read
        else:
            st.add(rule, _intake_category(rule), _intake_decision(rule), member, message)

    def _recognise(self, st: _TargetState, item: Item) -> None:
        for recogniser in self.recognisers:
            if recogniser.wants(item):
                self._recognise_one(st, recogniser, item)

    def _recognise_one(self, st: _TargetState, recogniser: Recogniser, item: Item) -> None:
        try:
            st.findings.extend(recogniser.recognise(item))
        except LimitHit:
            raise
        except Exception as exc:
            st.add("intake.recogniser_error", Category.INTAKE, Decision.REVIEW, item.member,
                   f"recogniser {recogniser.name!r} failed on this {item.format}: {type(exc).__name__}: {exc}")

    def _walk(self, st: _TargetState, container: Container, entries: list[Entry], member: str | None,
              depth: int) -> None:
        limits = self.limits
        for rule, message in container.notes:
            st.add(rule, _intake_category(rule), _intake_decision(rule), member, message)
        seen_notes = len(container.notes)
        if len(entries) > limits.max_members:
            st.findings.append(limit_finding(
                LimitHit("members", "member", f"{container.format} has more than max_members="
                                              f"{limits.max_members} entries; only the first {limits.max_members} "
                                              "were scanned"), member))
            entries = entries[: limits.max_members]
        siblings = tuple(entries)
        special, unsafe, encrypted, wanted = [], [], [], []
        for e in entries:
            if unsafe_name_reasons(e.name):
                unsafe.append(e)
            if e.kind is EntryKind.DIR:
                continue
            if e.kind is not EntryKind.FILE:
                special.append(e)
            elif e.encrypted:
                encrypted.append(e)
            elif (e.size and e.packed and e.size > limits.ratio_floor_bytes
                  and e.size / e.packed > limits.max_ratio):
                st.findings.append(limit_finding(LimitHit(
                    "ratio", "member", f"declares {e.size} bytes from {e.packed} packed "
                                       f"(ratio {e.size / e.packed:.0f} > max_ratio={limits.max_ratio:g}); "
                                       "not extracted"), join_member(member, e.name)))
            else:
                wanted.append(e)
        if unsafe:
            reasons = sorted({r for e in unsafe for r in unsafe_name_reasons(e.name)})
            st.add("intake.unsafe_name", Category.INTAKE, Decision.PASS, member,
                   f"{len(unsafe)} member names would escape or break an extraction directory "
                   f"({', '.join(reasons)}): {_names(unsafe)}; jieyao never extracts under member names")
        if special:
            kinds = sorted({e.kind.value for e in special})
            st.add("intake.special_member", Category.INTAKE, Decision.PASS, member,
                   f"{len(special)} members are {'/'.join(kinds)} entries, listed but not followed: "
                   + ", ".join(f"{e.name!r}" + (f" -> {e.link_target!r}" if e.link_target else "")
                               for e in special[:MAX_LISTED_NAMES])
                   + (f" and {len(special) - MAX_LISTED_NAMES} more" if len(special) > MAX_LISTED_NAMES else ""))
        if encrypted:
            st.add("intake.encrypted", Category.INTAKE, Decision.REVIEW, member,
                   f"{len(encrypted)} encrypted members could not be read: {_names(encrypted)}")
        container.extract(wanted, _Sink(self, st, container, member, depth, siblings))
        for rule, message in container.notes[seen_notes:]:
            st.add(rule, _intake_category(rule), _intake_decision(rule), member, message)


class _Sink:
    """Receives each extracted member from a container and scans it in turn."""

    def __init__(self, scanner: Scanner, st: _TargetState, container: Container, member: str | None,
                 depth: int, siblings: tuple[Entry, ...]) -> None:
        self._scanner = scanner
        self._st = st
        self._container = container
        self._member = member
        self._depth = depth
        self._siblings = siblings

    def writer(self, entry: Entry) -> BlobWriter:
        self._st.budget.check_time()
        limits = self._st.budget.limits
        if entry.size is not None and entry.size > limits.max_member_bytes:
            return BlobWriter(self._st.budget, self._st.spool, packed=entry.packed, cap=limits.oversize_head_bytes,
                              label=f"member {entry.name!r} (declared size {entry.size})")
        return BlobWriter(self._st.budget, self._st.spool, packed=entry.packed, label=f"member {entry.name!r}")

    def done(self, entry: Entry, writer: BlobWriter) -> None:
        blob = writer.finish()
        self._st.result.members += 1
        try:
            self._scanner._scan_item(self._st, blob, join_member(self._member, entry.name), basename(entry.name),
                                     self._depth + 1, self._siblings, self._container.format)
        finally:
            blob.close()

    def failed(self, entry: Entry, error: BaseException) -> None:
        path = join_member(self._member, entry.name)
        if isinstance(error, LimitHit):
            self._st.findings.append(limit_finding(error, path))
        elif isinstance(error, ContainerError):
            self._st.add(error.rule, _intake_category(error.rule), Decision.REVIEW, path, error.message)
        else:
            self._st.add("intake.corrupt", Category.INTAKE, Decision.REVIEW, path,
                         f"member could not be extracted: {type(error).__name__}: {error}")
