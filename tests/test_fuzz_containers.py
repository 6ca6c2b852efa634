"""Mutation fuzzing of every container reader: start from a valid small archive, flip bytes, truncate,
insert junk, and scan. Whatever comes in, the scan returns an explained, serialisable result and never
falls into the engine's internal-error net. Run longer with JIEYAO_FUZZ_EXAMPLES=5000."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jieyao import imitations as im
from jieyao.intake.blob import CHUNK
from jieyao.limits import MiB, ScanLimits
from jieyao.model import Decision, TargetResult
from jieyao.scan import scan_bytes
from tests.fixtures.hostile import rar4, rar5_bytes

EXAMPLES = int(os.environ.get("JIEYAO_FUZZ_EXAMPLES", "60"))

LIMITS = ScanLimits(max_depth=4, max_members=50, max_target_bytes=4 * MiB, max_member_bytes=1 * MiB,
                    max_ratio=50, ratio_floor_bytes=64 * 1024, max_seconds=10)

_TEXT = b"jieyao fuzz seed: an ordinary line of text\n" * 8
_MEMBERS = {"dir/a.txt": _TEXT, "b.bin": im.rand_bytes(600, seed=5), "dir/sub/c.txt": b"c\n"}
_TAR = im.tar_bytes({"dir/a.txt": _TEXT, "b.bin": im.rand_bytes(300, seed=6)}, symlinks={"link": "dir/a.txt"})

SEEDS: dict[str, tuple[str, bytes]] = {
    "zip": ("seed.zip", im.zip_bytes({**_MEMBERS, "inner.zip": im.zip_bytes({"x.txt": b"x\n"})})),
    "tar": ("seed.tar", _TAR),
    "gzip": ("seed.tar.gz", im.gzip_bytes(_TAR, name="seed.tar")),
    "bzip2": ("seed.tar.bz2", im.bzip2_bytes(_TAR)),
    "xz": ("seed.tar.xz", im.xz_bytes(_TAR)),
    "zstd": ("seed.tar.zst", im.zstd_bytes(_TAR)),
    "7z": ("seed.7z", im.sevenzip_bytes(_MEMBERS)),
    "rar4": ("seed.rar", rar4(_MEMBERS)),
    "rar5": ("seed.rar", rar5_bytes(_MEMBERS)),
    "pe-7z": ("seed.exe", im.sfx_exe(im.sevenzip_bytes(_MEMBERS))),
    "pe-zip": ("seed.exe", im.sfx_exe(im.zip_bytes(_MEMBERS))),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """Up to six edits of the seed: byte flips and overwrites at drawn positions, junk inserted, a cut."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "truncate"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "set":  # sizes and counts: make a field huge, zero or all ones
            width = draw(st.sampled_from([1, 2, 4, 8]))
            data[pos : pos + width] = draw(st.sampled_from([b"\xff", b"\x00", b"\x7f"])) * width
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        else:
            data = data[:pos]
    return bytes(data)


def check_result(result: TargetResult) -> None:
    assert isinstance(result, TargetResult)
    assert result.error is None or isinstance(result.error, str)
    if result.error is not None:
        assert result.error and not result.error.startswith("internal error"), result.error
    if result.decision is Decision.PASS:
        assert result.error is None
    for f in result.findings:
        assert isinstance(f.evidence, tuple) and f.evidence, f
        assert all(isinstance(e, str) and e for e in f.evidence), f
        assert f.rule != "intake.recogniser_error"
    assert result.bytes_extracted <= LIMITS.max_target_bytes + CHUNK
    text = json.dumps(result.to_dict(), ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates from hostile names


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seed_archives_scan_clean(kind: str) -> None:
    """The unmutated seeds are valid: they pass with their members read (so mutations start from real
    structure, not from something the readers already reject)."""
    name, data = SEEDS[kind]
    result = scan_bytes(name, data, limits=LIMITS)
    check_result(result)
    assert result.error is None
    assert result.decision is Decision.PASS, result.findings
    assert result.members >= 2


@pytest.mark.parametrize("kind", sorted(SEEDS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_container_never_breaks_the_scan(kind: str, data: st.DataObject) -> None:
    name, seed = SEEDS[kind]
    mutant = data.draw(mutated(seed), label="mutant")
    check_result(scan_bytes(name, mutant, limits=LIMITS))
