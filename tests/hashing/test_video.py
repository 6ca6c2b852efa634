"""Per-frame PDQ of videos written here with PyAV: sampling, containers, limits, and corrupt input (garbage
after an ftyp box, a truncated MP4, a truncated Matroska file)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from jieyao.hashing.signals import format_vpdq, parse_vpdq, pdq_distance
from jieyao.hashing.video import VideoHashError, hash_video, sniff_container

MakeVideo = Callable[..., Path]


def test_one_frame_per_second_by_default(video: MakeVideo):
    r = hash_video(video("a.mp4", seconds=3, rate=10))
    assert [f.timestamp for f in r.frames] == [0.0, 1.0, 2.0]
    assert r.decoded_frames == 30 and not r.partial and r.container == "mov"
    assert all(len(f.pdq) == 64 for f in r.frames)
    assert parse_vpdq(format_vpdq(r.frames)) == r.frames


def test_fps_is_configurable(video: MakeVideo):
    path = video("a.mp4", seconds=3, rate=10)
    assert len(hash_video(path, fps=10).frames) == 30
    assert [f.timestamp for f in hash_video(path, fps=2).frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert [f.timestamp for f in hash_video(path, fps=0.4).frames] == [0.0, 2.5]
    with pytest.raises(ValueError):
        hash_video(path, fps=0)


@pytest.mark.parametrize("name,fmt,codec", [("a.mkv", None, None), ("a.webm", None, "libvpx-vp9"),
                                            ("a.avi", None, "mpeg4"), ("a.ts", "mpegts", "mpeg2video"),
                                            ("a.flv", "flv", "flv")])
def test_containers(video: MakeVideo, name: str, fmt: str | None, codec: str | None):
    kw = {"fmt": fmt} | ({"codec": codec} if codec else {})
    r = hash_video(video(name, seconds=2, rate=10, **kw))
    assert len(r.frames) == 2 and not r.partial


def test_same_video_reencoded_keeps_its_frames(video: MakeVideo):
    a = hash_video(video("a.mp4", seconds=3, rate=10, size=96))
    b = hash_video(video("b.webm", seconds=3, rate=10, size=96, codec="libvpx-vp9"))
    assert all(pdq_distance(x.pdq, y.pdq) <= 31 for x, y in zip(a.frames, b.frames, strict=True))


def test_bytes_and_file_objects(video: MakeVideo):
    data = video("a.mp4", seconds=2).read_bytes()
    assert len(hash_video(data).frames) == 2
    assert len(hash_video(io.BytesIO(data)).frames) == 2


def test_max_frames_stops_with_partial(video: MakeVideo):
    r = hash_video(video("a.mp4", seconds=3, rate=10), fps=10, max_frames=5)
    assert len(r.frames) == 5 and r.partial and any("max_frames" in n for n in r.notes)


def test_wall_clock_limit(video: MakeVideo):
    with pytest.raises(VideoHashError, match="max_seconds"):
        hash_video(video("a.mp4", seconds=3, rate=10), fps=10, max_seconds=1e-9)


def test_frame_size_limit_refuses_before_decoding(video: MakeVideo):
    with pytest.raises(VideoHashError, match="over the limit"):
        hash_video(video("a.mp4", seconds=1), max_frame_pixels=1000)


def test_large_frames_are_reduced(video: MakeVideo):
    r = hash_video(video("a.mp4", seconds=1, size=128), frame_side=32)
    assert len(r.frames) == 1 and r.width == 128


def test_garbage_after_ftyp_is_a_clear_error():
    data = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 40
    assert sniff_container(data) == "mp4"
    with pytest.raises(VideoHashError, match="not a readable"):
        hash_video(data)


def test_truncated_mp4_is_a_clear_error(video: MakeVideo):
    data = video("a.mp4", seconds=3).read_bytes()
    with pytest.raises(VideoHashError, match="moov"):
        hash_video(data[: len(data) // 2])


def test_truncated_matroska_gives_partial_frames(video: MakeVideo):
    data = video("a.mkv", seconds=6, rate=10, cuts=2).read_bytes()
    r = hash_video(data[: len(data) // 2])
    assert 1 <= len(r.frames) < 6 and r.partial and any("truncated" in n for n in r.notes)


@pytest.mark.parametrize("data", [b"", b"not a video at all", b"RIFF\x00\x00\x00\x00WAVEfmt ",
                                  b"\x1a\x45\xdf\xa3" + b"\xff" * 200, b"FLV\x01" + bytes(300),
                                  b"G" + bytes(187) + b"G" + bytes(187) + b"G" + bytes(300)])
def test_non_videos_and_broken_headers_are_errors(data: bytes):
    with pytest.raises(VideoHashError):
        hash_video(data)


def test_sniff_container_by_magic():
    assert sniff_container(b"\x00\x00\x00\x18ftypheic" + bytes(8)) is None  # a HEIC still image
    assert sniff_container(b"\x00\x00\x00\x18ftypqt  " + bytes(8)) == "mp4"
    assert sniff_container(b"\x1a\x45\xdf\xa3" + bytes(8)) == "matroska"
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert sniff_container(b"RIFF\x00\x00\x00\x00WEBPVP8 ") is None
    assert sniff_container(b"hello") is None


def test_ffmpeg_may_not_open_other_files(video: MakeVideo, tmp_path: Path):
    """An HLS playlist naming a local file is what FFmpeg would happily read (the classic SSRF / file-read
    trick). It is not a container we accept, and even a demuxer that tries a nested open is refused."""
    from jieyao.hashing import video as vmod

    target = video("secret.ts", seconds=1, fmt="mpegts", codec="mpeg2video")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{target}\n#EXT-X-ENDLIST\n".encode()
    with pytest.raises(VideoHashError, match="not a video container"):
        hash_video(playlist)
    with pytest.raises(VideoHashError, match="opens nothing but the file given"):
        vmod._hash_stream(io.BytesIO(playlist), "hls", 1.0, 10, 10.0, 10**6, 64, 1)
