"""Folder summaries: what a folder holds as a whole, said once its files have been scanned.

Files in a folder are separate targets (scanned in any worker process), so a folder of 500 aligned faces
or an app's source tree is only visible as a set here, in the process that receives the results in walk
order. Each folder's own result (its layout findings) is held until the walk leaves the folder; meanwhile
the findings of its files are gathered, and recognisers' `summarise` hook is called with them, exactly
as for an archive. Memory is bounded by the depth of the walk and a cap on gathered findings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from jieyao.intake.blob import BytesBlob
from jieyao.model import Category, Decision, Finding, TargetResult, join_member
from jieyao.recognise.base import DIRECTORY, Item, Recogniser

GATHERED = frozenset({Category.MODEL, Category.FACESET, Category.CODE, Category.SOFTWARE, Category.WORKSPACE,
                      Category.HASH})
"""Categories worth summarising; intake notes and limits are the files' own business."""
MAX_GATHERED = 20_000
"""Findings kept per open folder; past this a folder is summarised from what was kept (and says so)."""
SUBTREE_CATEGORIES = frozenset({Category.CODE})
"""Gathered by every enclosing folder, not just the parent: an app's source files sit in different
sub-folders, and the smallest folder holding two of them is the app (its summary then covers them for
the folders above)."""
LAYOUT_CATEGORIES = frozenset({Category.SOFTWARE, Category.CODE, Category.WORKSPACE})


def is_folder_marker(result: TargetResult) -> bool:
    return result.format == DIRECTORY and result.error is None and result.skipped is None


def _prefix(folder: str) -> str:
    return folder.rstrip(os.sep) + os.sep if folder.rstrip(os.sep) else os.sep


@dataclass
class _Frame:
    result: TargetResult
    prefix: str
    claimed: bool
    """The folder's layout said something (a build, an app tree): it gathers its whole subtree."""
    gathered: list[Finding] = field(default_factory=list)
    dropped: int = 0


class FolderRollup:
    """Feed results in walk order; get them back, with folder results (and their summaries) emitted when
    the walk leaves each folder."""

    def __init__(self, recognisers: Sequence[Recogniser]) -> None:
        self._recognisers = list(recognisers)
        self._stack: list[_Frame] = []

    def feed(self, result: TargetResult) -> Iterator[TargetResult]:
        path = result.path
        while self._stack and not path.startswith(self._stack[-1].prefix):
            yield from self._close(self._stack.pop())
        if is_folder_marker(result):
            self._push(result)
            return
        yield result
        self._gather(result)

    def finish(self) -> Iterator[TargetResult]:
        while self._stack:
            yield from self._close(self._stack.pop())

    def wrap(self, results: Iterable[TargetResult]) -> Iterator[TargetResult]:
        for result in results:
            yield from self.feed(result)
        yield from self.finish()

    def _push(self, result: TargetResult) -> None:
        """A sub-folder of a recognised build repeats what its ancestor said (`_internal` of a DFL build is
        a partial DFL build): findings of a family and category an open ancestor already has, with a
        decision at least as strong, are dropped."""
        seen: dict[tuple[str | None, Category], int] = {}
        for frame in self._stack:
            for f in frame.result.findings:
                if f.family and f.category in LAYOUT_CATEGORIES:
                    key = (f.family, f.category)
                    seen[key] = max(seen.get(key, -1), f.decision.rank)
        # only what an ancestor already said at least as strongly: a full build below a folder of a few of
        # its scripts keeps its block
        result.findings = [f for f in result.findings if seen.get((f.family, f.category), -1) < f.decision.rank]
        claimed = any(f.category in LAYOUT_CATEGORIES for f in result.findings)
        self._stack.append(_Frame(result, _prefix(result.path), claimed))

    def _gather(self, result: TargetResult) -> None:
        if not self._stack:
            return
        parent = os.path.dirname(result.path.rstrip(os.sep))
        wanted = [f for f in result.findings if f.category in GATHERED]
        if not wanted:
            return
        for frame in self._stack:
            direct = _prefix(parent) == frame.prefix
            rel = result.path[len(frame.prefix):]
            for f in wanted:
                if not (direct or frame.claimed or f.category in SUBTREE_CATEGORIES):
                    continue
                if len(frame.gathered) >= MAX_GATHERED:
                    frame.dropped += 1
                    continue
                frame.gathered.append(dataclasses.replace(f, member=join_member(rel, f.member) if f.member else rel))

    def _close(self, frame: _Frame) -> Iterator[TargetResult]:
        result = frame.result
        if frame.gathered or result.findings:
            item = Item(target=result.path, member=None, name=os.path.basename(result.path.rstrip(os.sep)),
                        format=DIRECTORY, blob=BytesBlob(b""), sha256=None, size=0, depth=0)
            inner = [*result.findings, *frame.gathered]
            for recogniser in self._recognisers:
                try:
                    result.findings.extend(recogniser.summarise(item, inner))
                except Exception as exc:  # one recogniser's bug must not lose the folder's other findings
                    result.findings.append(Finding(
                        rule="intake.recogniser_error", category=Category.INTAKE, decision=Decision.REVIEW,
                        evidence=(f"recogniser {recogniser.name!r} failed summarising this folder: "
                                  f"{type(exc).__name__}: {exc}",)))
            if frame.dropped and result.findings:
                result.findings.append(Finding(
                    rule="limit.members", category=Category.LIMIT, decision=Decision.REVIEW,
                    evidence=(f"folder summary made from the first {MAX_GATHERED} findings inside it; "
                              f"{frame.dropped} more were not considered",)))
        if result.findings:
            yield result
            self._gather(result)  # the parent sees this folder's summary, so it does not count its faces again
