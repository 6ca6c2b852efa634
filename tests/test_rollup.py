"""Folder summaries in the parent process: folder results held until the walk leaves them, findings of
files gathered and summarised, sub-folders of a recognised build not repeating it, bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from jieyao import rollup
from jieyao.model import Category, Decision, Finding, TargetResult
from jieyao.recognise.base import DIRECTORY, Item, Recogniser
from jieyao.rollup import FolderRollup


def face(member: str | None = None) -> Finding:
    return Finding(rule="t.face", category=Category.FACESET, decision=Decision.REVIEW, evidence=("a face",),
                   member=member, family="T")


def layout(family: str = "Build") -> Finding:
    return Finding(rule="t.layout", category=Category.SOFTWARE, decision=Decision.BLOCK, evidence=("a build",),
                   family=family)


class Counting(Recogniser):
    """Says how many `t.face` findings a folder holds, and which members they were."""

    name = "counting"
    formats = frozenset({DIRECTORY})

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str | None]]] = []
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def recognise(self, item: Item) -> Iterable[Finding]:
        return ()

    def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
        faces = [f for f in findings if f.rule == "t.face"]
        self.calls.append((item.target, [f.member for f in faces]))
        self.seen.append((item.target, [(f.rule, f.member) for f in findings if f.rule != "t.face"]))
        if len(faces) >= 2:
            yield Finding(rule="t.set", category=Category.FACESET, decision=Decision.BLOCK,
                          evidence=(f"{len(faces)} faces",))


def folder(path: str, *findings: Finding) -> TargetResult:
    return TargetResult(path=path, format=DIRECTORY, size=0, findings=list(findings))


def file(path: str, *findings: Finding) -> TargetResult:
    return TargetResult(path=path, format="jpeg", size=10, findings=list(findings))


def test_folder_result_comes_after_its_files_with_the_summary():
    rec = Counting()
    out = list(FolderRollup([rec]).wrap([
        folder("root"), file("root/a.jpg", face()), file("root/b.jpg", face()), file("root/c.txt"),
    ]))
    assert [r.path for r in out] == ["root/a.jpg", "root/b.jpg", "root/c.txt", "root"]
    assert [f.rule for f in out[-1].findings] == ["t.set"]
    assert rec.calls == [("root", ["a.jpg", "b.jpg"])]  # members are relative to the folder


def test_folders_without_findings_are_not_reported():
    out = list(FolderRollup([Counting()]).wrap([folder("root"), file("root/a.jpg", face()), folder("root/sub")]))
    assert [r.path for r in out] == ["root/a.jpg"]


def test_an_unrecognised_folder_sees_only_its_own_files():
    rec = Counting()
    list(FolderRollup([rec]).wrap([
        folder("root"), file("root/x.jpg", face()),
        folder("root/sub"), file("root/sub/a.jpg", face()), file("root/sub/b.jpg", face()),
    ]))
    calls = dict(rec.calls)
    assert calls["root/sub"] == ["a.jpg", "b.jpg"]
    # root holds one face of its own; the sub-folder's set reaches it as a summary, not as two more faces
    assert calls["root"] == ["x.jpg"]
    assert dict(rec.seen)["root"] == [("t.set", "sub")]


def test_a_recognised_folder_gathers_its_whole_subtree():
    rec = Counting()
    out = list(FolderRollup([rec]).wrap([
        folder("ws", layout()), folder("ws/deep"), folder("ws/deep/er"), file("ws/deep/er/a.jpg", face()),
        file("ws/deep/er/b.jpg", face("in.zip!b.jpg")),
    ]))
    assert dict(rec.calls)["ws"] == ["deep/er/a.jpg", "deep/er/b.jpg!in.zip!b.jpg"]
    ws = next(r for r in out if r.path == "ws")
    assert {f.rule for f in ws.findings} == {"t.layout", "t.set"}


def test_sub_folders_of_a_recognised_build_do_not_repeat_it():
    out = list(FolderRollup([]).wrap([
        folder("dfl", layout("DeepFaceLab")), folder("dfl/_internal", layout("DeepFaceLab"), layout("Other")),
        file("dfl/_internal/x.txt"), folder("elsewhere", layout("DeepFaceLab")),
    ]))
    by_path = {r.path: r for r in out}
    assert [f.family for f in by_path["dfl/_internal"].findings] == ["Other"]
    assert [f.family for f in by_path["dfl"].findings] == ["DeepFaceLab"]
    assert [f.family for f in by_path["elsewhere"].findings] == ["DeepFaceLab"]  # not under dfl/


def test_a_failing_summary_is_reported_and_the_folder_kept():
    class Broken(Counting):
        name = "broken"

        def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
            raise RuntimeError("boom")

    out = list(FolderRollup([Broken(), Counting()]).wrap([
        folder("root"), file("root/a.jpg", face()), file("root/b.jpg", face())]))
    rules = [f.rule for f in out[-1].findings]
    assert rules == ["intake.recogniser_error", "t.set"]
    assert "boom" in out[-1].findings[0].evidence[0]


def test_gathering_is_bounded_and_says_so(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rollup, "MAX_GATHERED", 3)
    rec = Counting()
    out = list(FolderRollup([rec]).wrap([folder("r"), *(file(f"r/{i}.jpg", face()) for i in range(10))]))
    assert len(rec.calls[0][1]) == 3
    assert [f.rule for f in out[-1].findings] == ["t.set", "limit.members"]
    assert "7 more" in out[-1].findings[-1].evidence[0]


def test_error_and_skipped_results_pass_through_untouched():
    errored = TargetResult(path="r/locked", format=DIRECTORY, error="permission denied: cannot list folder")
    out = list(FolderRollup([Counting()]).wrap([folder("r"), errored, file("r/a.jpg")]))
    assert [r.path for r in out] == ["r/locked", "r/a.jpg"]


def test_trailing_separators_and_siblings_with_common_prefixes():
    rec = Counting()
    list(FolderRollup([rec]).wrap([
        folder("data/"), file("data/a.jpg", face()), file("data/b.jpg", face()),
        folder("data2"), file("data2/c.jpg", face()),
    ]))
    calls = dict(rec.calls)
    assert calls["data/"] == ["a.jpg", "b.jpg"]
    assert calls["data2"] == ["c.jpg"]  # "data2/c.jpg" is not inside "data/"


def test_code_findings_reach_every_enclosing_folder():
    class Apps(Counting):
        def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
            code = [f.member for f in findings if f.rule == "t.code"]
            self.calls.append((item.target, code))
            return ()

    code = Finding(rule="t.code", category=Category.CODE, decision=Decision.REVIEW, evidence=("swap",))
    rec = Apps()
    list(FolderRollup([rec]).wrap([
        folder("up"), folder("up/app"), folder("up/app/a"), file("up/app/a/x.py", code),
        folder("up/app/b"), file("up/app/b/y.py", code),
    ]))
    calls = dict(rec.calls)
    assert calls["up/app"] == ["a/x.py", "b/y.py"] and calls["up"] == ["app/a/x.py", "app/b/y.py"]


def test_a_renamed_app_tree_on_disk_is_one_app_at_the_folder_that_holds_it(tmp_path):
    from jieyao.imitations import apps
    from jieyao.scan import iter_scan

    for rel, data in apps.roop_tree().items():
        path = tmp_path / "uploads" / rel.replace("roop/", "mytool/", 1)  # layout renamed: no layout finding
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    results = list(iter_scan([tmp_path / "uploads"]))
    apps_found = [(r.path, f) for r in results for f in r.findings if f.rule == "code.faceswap_app"]
    assert len(apps_found) == 1, [p for p, _ in apps_found]
    path, finding = apps_found[0]
    assert path == str(tmp_path / "uploads" / "mytool") and finding.decision is Decision.BLOCK
    assert not any(f.rule.startswith("layout.") for r in results for f in r.findings)


def test_a_stronger_finding_below_a_weaker_ancestor_is_kept():
    weak = Finding(rule="t.layout", category=Category.SOFTWARE, decision=Decision.REVIEW, evidence=("3 scripts",),
                   family="DeepFaceLab")
    out = list(FolderRollup([]).wrap([
        folder("downloads", weak), folder("downloads/build", layout("DeepFaceLab")),
        folder("downloads/build/_internal", weak),
    ]))
    by_path = {r.path: r for r in out}
    assert by_path["downloads/build"].findings[0].decision is Decision.BLOCK
    assert "downloads/build/_internal" not in by_path  # weaker than what its ancestor said
