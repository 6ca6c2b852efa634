import os

from jieyao.intake.walk import iter_targets
from jieyao.scan import scan_paths


def test_folders_are_walked_in_name_order(put, tmp_path):
    for rel in ("b/2.txt", "a/1.txt", "a/z/3.txt", "c.txt"):
        put(rel, b"x")
    paths = [os.path.relpath(i.path, tmp_path) for i in iter_targets([str(tmp_path)])]
    assert paths == ["c.txt", "a/1.txt", "a/z/3.txt", "b/2.txt"] or paths == sorted(paths, key=lambda p: p)
    assert set(paths) == {"a/1.txt", "a/z/3.txt", "b/2.txt", "c.txt"}


def test_symlinks_are_never_followed_out_of_the_root(put, tmp_path):
    outside = put("outside/secret.txt", b"secret")
    root = tmp_path / "root"
    put("root/real.txt", b"real")
    os.symlink(outside, root / "out-link")
    os.symlink(outside.parent, root / "out-dir-link")
    os.symlink(root / "real.txt", root / "in-link")
    os.symlink(tmp_path / "nothing", root / "dangling")
    items = {os.path.basename(i.path): i for i in iter_targets([str(root)])}
    assert items["real.txt"].skipped is None
    assert "outside the scan root" in items["out-link"].skipped
    assert "outside the scan root" in items["out-dir-link"].skipped
    assert "inside the scan root" in items["in-link"].skipped
    assert "dangling" in items["dangling"].skipped
    assert "secret.txt" not in items


def test_special_files_are_reported_as_skipped(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "ok.txt").write_text("ok")
    report = scan_paths([tmp_path])
    by_name = {os.path.basename(t.path): t for t in report.targets}
    assert by_name["pipe"].skipped.startswith("fifo")
    assert by_name["pipe"].decision.value == "pass"
    assert by_name["ok.txt"].format == "text"
    assert report.stats.skipped == 1


def test_a_named_symlink_is_followed(put, tmp_path):
    real = put("real.txt", b"x")
    link = tmp_path / "link.txt"
    os.symlink(real, link)
    (item,) = iter_targets([str(link)])
    assert item.skipped is None and item.error is None


def test_folder_layouts_reach_layout_recognisers_only(put, tmp_path, monkeypatch):
    from jieyao import imitations as im
    from jieyao import registry
    from jieyao.model import Category, Decision, Finding
    from jieyao.recognise.base import Recogniser

    seen = []

    class Layout(Recogniser):
        name = "layout"
        formats = frozenset({"directory"})

        def recognise(self, item):
            seen.append(item)
            names = {e.name for e in item.children}
            if "_internal/DeepFaceLab/main.py" in names and "6) train SAEHD.bat" in names:
                yield Finding(rule="test.layout", category=Category.SOFTWARE, decision=Decision.BLOCK,
                              evidence=(f"{len(names)} entries look like a build",))

    class Content(Recogniser):
        name = "content"

        def recognise(self, item):
            assert item.format != "directory"
            return ()

    monkeypatch.setitem(registry._RECOGNISER_FACTORIES, "test-layout", lambda cfg: [Layout(), Content()])
    for rel, data in im.dfl_build_layout().items():
        put(f"share/Build/{rel}", data)
    put("share/other/readme.txt", b"x")
    os.symlink("/etc", tmp_path / "share" / "other" / "etc-link")
    for jobs in (1, 2):
        report = scan_paths([tmp_path / "share"], jobs=jobs)
        folders = [t for t in report.targets if t.format == "directory"]
        assert [os.path.basename(t.path) for t in folders] == ["Build"]
        assert folders[0].decision.value == "block"
        assert [f.rule for f in folders[0].findings if f.rule.startswith("test.")] == ["test.layout"]
        files = [t for t in report.targets if t.format != "directory"]
        assert len(files) == len(im.dfl_build_layout()) + 2
    build = next(i for i in seen if i.name == "Build")
    assert any(e.kind.value == "dir" and e.name == "_internal" for e in build.children)
    assert not any("passwd" in e.name for i in seen for e in i.children)  # symlinked dirs are not entered


def test_no_folder_targets_without_layout_recognisers(put, tmp_path):
    put("a/b/c.txt", b"x")
    report = scan_paths([tmp_path])
    assert [t.format for t in report.targets] == ["text"]
