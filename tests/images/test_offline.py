"""Nothing is downloaded: OCR and QR decoding run in a process where every network call is refused and
recorded (an audit hook on socket and urllib events), from engine construction to the last picture."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.images.pictures import add_qr, canvas, draw_lines, png_bytes

PROBE = textwrap.dedent("""
    import json, sys
    events = []
    # (not socket.bind: urllib3, which rapidocr imports through requests, binds ::1 at import to probe IPv6)
    NET = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
           "socket.sendto", "socket.sendmsg", "urllib.Request", "http.client.connect", "ftplib.connect",
           "smtplib.connect")

    def hook(event, args):
        if event in NET:
            events.append(event)
            raise OSError(f"network refused in this test: {event}")

    sys.addaudithook(hook)
    from jieyao.images import ImageReader, moderate_images
    reader = ImageReader()
    data = open(sys.argv[1], "rb").read()
    got = reader.read(data, "cover.png")
    res = moderate_images([data], reader=reader)
    url = reader.read("https://example.com/cover.png", "url")  # a string is refused, never fetched
    print(json.dumps({"events": events, "lines": [l.text for l in got.lines], "decision": res.decision.value,
                      "url_error": url.error}))
""")


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.parametrize("no_network_namespace", [False, True])
def test_ocr_and_qr_make_no_network_attempt(tmp_path: Path, no_network_namespace: bool) -> None:
    """Twice: with the audit hook alone, and inside a new network namespace with no interface at all
    (`unshare -rn`, where the machine allows it), as the OCR study ran it."""
    if no_network_namespace and not _can_unshare():
        pytest.skip("unshare -rn is not permitted here")
    prefix = ["unshare", "-rn"] if no_network_namespace else []
    img = add_qr(draw_lines(canvas(), ["DeepFaceLab pack for sale"]), "https://pan.baidu.com/s/1AbCdEf?pwd=x7k2",
                 450, 250)
    path = tmp_path / "cover.png"
    path.write_bytes(png_bytes(img))
    out = subprocess.run([*prefix, sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["events"] == []
    assert got["lines"] == ["DeepFaceLab pack for sale", "https://pan.baidu.com/s/1AbCdEf?pwd=x7k2"]
    assert got["decision"] == "block" and "must be bytes" in got["url_error"]


def test_only_the_headless_opencv_build_is_installed() -> None:
    """Both OpenCV builds install the same `cv2`; with both present, removing one leaves no cv2 at all
    (ocr.md §5.4). The `ocr` extra asks for the headless build only, and nothing else may pull the GUI one."""
    from importlib import metadata

    names = {(d.metadata["Name"] or "").lower() for d in metadata.distributions()}
    assert "opencv-python-headless" in names
    assert not names & {"opencv-python", "opencv-contrib-python", "rapidocr-onnxruntime", "rapidocr-ng"}
