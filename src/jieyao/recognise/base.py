"""The recogniser interface: a recogniser is told what one item is and says what it sees.

An item is a target or a member: its sniffed format, a bounded reader of its bytes, its SHA-256 (already
computed by intake), its container's listing (`siblings`) and, for a container, its own (`children`).
Recognisers must not execute or deserialise what they read; they get bytes, never objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from jieyao.intake.blob import Blob
from jieyao.intake.containers.base import Entry
from jieyao.model import Finding

DIRECTORY = "directory"


@dataclass(frozen=True)
class Item:
    target: str
    member: str | None
    """`!`-joined path inside the target; None for the target itself."""
    name: str
    format: str
    blob: Blob
    sha256: str | None
    size: int
    depth: int
    siblings: tuple[Entry, ...] = ()
    children: tuple[Entry, ...] | None = None
    container_format: str | None = None

    @property
    def truncated(self) -> bool:
        return self.blob.truncated

    @property
    def display_path(self) -> str:
        return self.target if self.member is None else f"{self.target}!{self.member}"


class Recogniser(ABC):
    """Subclass, set `name` (and `formats` to see only some items), implement `recognise`."""

    name: ClassVar[str] = "recogniser"
    formats: ClassVar[frozenset[str] | None] = None
    """Formats this recogniser wants to see; None means every file and member. Folder layouts (format
    `directory`, the layout in `children`) go only to recognisers that name `directory` here."""

    def wants(self, item: Item) -> bool:
        if self.formats is None:
            return item.format != DIRECTORY
        return item.format in self.formats

    @property
    def wants_folders(self) -> bool:
        return self.formats is not None and DIRECTORY in self.formats

    def wants_folder(self, top_level: Sequence[tuple[str, bool]]) -> bool:
        """Given a folder's own entries (name, is_dir), whether its deeper layout is worth listing for
        `recognise`; the default says yes. Listing every folder's subtree is what folder scans cost."""
        return True

    @abstractmethod
    def recognise(self, item: Item) -> Iterable[Finding]: ...

    def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
        """Called once every member of the container or folder `item` has been scanned, with the findings
        made on it and inside it, so a recogniser can say one thing about a set (a model split into part
        files, a folder of aligned faces, an app's source files). For a folder, findings of its files carry
        `member` = the path relative to the folder."""
        return ()

    def rule_help(self) -> dict[str, str]:
        """Rule id → one-paragraph help text, for SARIF and `jieyao rules`."""
        return {}
