"""The evaluation harness (with a fake moderator whose every answer is known) and the labelled set itself."""

from __future__ import annotations

import importlib
import json
import re
import tempfile
import unicodedata
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.model import Decision
from jieyao.text.evaluate import (
    BadLine,
    Confusion,
    EvalReport,
    evaluate,
    evaluate_examples,
    excerpt,
    load_examples,
)
from jieyao.text.result import ModerationResult, RuleFired

DATA = Path(__file__).resolve().parents[1] / "data" / "moderation"
DEV, HELDOUT = DATA / "dev.jsonl", DATA / "heldout.jsonl"
EVASION_TAGS = {"plain", "homophone", "pinyin", "initials", "traditional", "fullwidth", "symbols", "emoji",
                "zero_width", "chaizi", "lookalike", "reversed", "contact_obfuscation", "repeats", "mixed"}
BENIGN_TAGS = {"ml", "gpu", "tcm", "fiction", "game", "clouddrive", "wechat", "beauty", "news", "detection",
               "ai-model", "software", "collision", "english"}
LABELS = {"model-sale", "software-sale", "custom-service", "tutorial", "contact-solicitation"}


# -- a fake moderator with known answers ----------------------------------------------------------------------


def fake_moderate(text: str) -> ModerationResult:
    if "CRASH" in text:
        raise RuntimeError("boom")
    if "NONE" in text:
        return None  # type: ignore[return-value]  # a broken moderator, on purpose
    if "BLOCKME" in text:
        return ModerationResult(None, Decision.BLOCK, labels=("model-sale",), score=0.9,
                                rules=(RuleFired("model-sale.cooccur", Decision.BLOCK, "model-sale", "test"),))
    if "REVIEWME" in text:
        return ModerationResult(None, Decision.REVIEW, labels=("faceswap-mention",), score=0.4,
                                rules=(RuleFired("faceswap.single", Decision.REVIEW, "faceswap-mention", "t"),))
    if "ERRORED" in text:
        return ModerationResult(None, Decision.REVIEW, error="text truncated")
    return ModerationResult(None, Decision.PASS)


def line(id_: str, text: str, label: str, labels: list[str] | None = None, tags: list[str] | None = None) -> str:
    return json.dumps({"id": id_, "text": text, "label": label, "labels": labels or [], "tags": tags or []},
                      ensure_ascii=False)


SMALL = [
    line("v1", "出售 BLOCKME", "violating", ["model-sale", "contact-solicitation"], ["plain"]),
    line("v2", "REVIEWME 软件", "violating", ["software-sale"], ["pinyin"]),
    line("v3", "\u202e丹金 nothing here", "violating", ["model-sale"], ["pinyin", "emoji"]),
    line("b1", "炼丹 REVIEWME", "benign", [], ["ml"]),
    line("b2", "炼丹 loss", "benign", [], ["ml", "gpu"]),
    line("b3", "新闻 BLOCKME", "benign", [], ["news"]),
    line("v4", "CRASH", "violating", ["tutorial"], ["zero_width"]),
]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(SMALL) + "\n", encoding="utf-8")
    return path


def test_counts_precision_recall_at_block_and_review(small: Path) -> None:
    report = evaluate(fake_moderate, small)
    assert report.positive == (Decision.BLOCK, Decision.REVIEW)
    assert (report.tp, report.fp, report.fn, report.tn) == (2, 2, 2, 1)
    assert report.n == 7
    assert report.precision == pytest.approx(0.5)
    assert report.recall == pytest.approx(0.5)
    assert report.f1 == pytest.approx(0.5)
    assert report.block_review == report.confusion
    assert report.block_only == Confusion(tp=1, fp=1, fn=3, tn=2)
    assert report.block_only.recall == pytest.approx(0.25)
    assert report.block_only.f1 == pytest.approx(1 / 3)
    assert report.decisions == {"block": 2, "review": 2, "pass": 3}
    assert not report.meets_goal()


def test_positive_block_only_changes_the_headline_and_the_cases(small: Path) -> None:
    report = evaluate(fake_moderate, small, positive=(Decision.BLOCK,))
    assert report.confusion == Confusion(tp=1, fp=1, fn=3, tn=2)
    assert report.block_review == Confusion(tp=2, fp=2, fn=2, tn=1)
    assert [c.id for c in report.false_positives] == ["b3"]
    assert [c.id for c in report.false_negatives] == ["v2", "v3", "v4"]
    pinyin = report.tag("pinyin")
    assert pinyin is not None and (pinyin.flagged, pinyin.missed) == (0, 2)


def test_false_positive_and_negative_cases_carry_context(small: Path) -> None:
    report = evaluate(fake_moderate, small)
    assert [c.id for c in report.false_positives] == ["b1", "b3"]
    assert [c.id for c in report.false_negatives] == ["v3", "v4"]
    b3 = report.false_positives[1]
    assert (b3.decision, b3.rules, b3.labels, b3.line, b3.tags) == (
        Decision.BLOCK, ("model-sale.cooccur",), ("model-sale",), 6, ("news",))
    v3 = report.false_negatives[0]
    assert v3.decision is Decision.PASS and v3.expected_labels == ("model-sale",)
    assert v3.excerpt.startswith("\\u202e丹金")


def test_per_tag_confusion(small: Path) -> None:
    report = evaluate(fake_moderate, small)
    got = {t.tag: (t.n, t.violating, t.benign, t.flagged, t.missed, t.false_alarms) for t in report.per_tag}
    assert got == {
        "plain": (1, 1, 0, 1, 0, 0),
        "pinyin": (2, 2, 0, 1, 1, 0),
        "emoji": (1, 1, 0, 0, 1, 0),
        "zero_width": (1, 1, 0, 0, 1, 0),
        "ml": (2, 0, 2, 1, 0, 1),
        "gpu": (1, 0, 1, 0, 0, 0),
        "news": (1, 0, 1, 1, 0, 1),
    }
    ml = report.tag("ml")
    assert ml is not None and ml.false_alarm_rate == pytest.approx(0.5)
    pinyin = report.tag("pinyin")
    assert pinyin is not None and pinyin.recall == pytest.approx(0.5)
    assert report.tag("nope") is None


def test_per_label_recall_and_label_precision(small: Path) -> None:
    report = evaluate(fake_moderate, small)
    got = {s.label: (s.n, s.flagged, s.labelled, s.predicted, s.correct) for s in report.per_label}
    assert got == {
        "model-sale": (2, 1, 1, 2, 1),
        "contact-solicitation": (1, 1, 0, 0, 0),
        "software-sale": (1, 1, 0, 0, 0),
        "tutorial": (1, 0, 0, 0, 0),
        "faceswap-mention": (0, 0, 0, 2, 0),
    }
    ms = report.label("model-sale")
    assert ms is not None
    assert (ms.recall, ms.label_recall, ms.label_precision) == (0.5, 0.5, 0.5)


def test_crashes_and_broken_results_are_failures_not_detections(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join([
        line("v1", "CRASH", "violating", ["model-sale"]),
        line("v2", "NONE", "violating", ["model-sale"]),
        line("v3", "ERRORED", "violating", ["model-sale"]),
        line("b1", "fine", "benign"),
    ]), encoding="utf-8")
    report = evaluate(fake_moderate, path)
    failures = {c.id: c.error for c in report.failures}
    assert failures == {"v1": "RuntimeError: boom", "v2": "moderate returned NoneType", "v3": "text truncated"}
    # the crashed and broken ones count as PASS; the one that reported an error still keeps its decision
    assert report.confusion == Confusion(tp=1, fp=0, fn=2, tn=1)


def test_bad_lines_are_reported_with_numbers_and_the_rest_is_evaluated(tmp_path: Path) -> None:
    rows: list[bytes] = [
        line("v1", "BLOCKME", "violating", ["model-sale"]).encode(),    # 1 ok
        b"{not json",                                                   # 2
        b"[1, 2]",                                                      # 3
        b"",                                                            # 4 blank: skipped, not an error
        json.dumps({"id": "x", "label": "benign"}).encode(),            # 5 no text
        line("x2", "t", "spam").encode(),                               # 6 bad label
        json.dumps({"id": "x3", "text": "t", "label": "benign", "tags": "ml"}).encode(),  # 7 tags not a list
        line("x4", "t", "benign", ["model-sale"]).encode(),             # 8 benign with labels
        line("v1", "again", "violating").encode(),                      # 9 duplicate id
        b'{"id": "x5", "text": "\xff\xfe", "label": "benign"}',         # 10 not UTF-8
        json.dumps({"id": "", "text": "t", "label": "benign"}).encode(),  # 11 empty id
        b"   ",                                                         # 12 blank
        json.dumps({"id": "b1", "text": "REVIEWME \ud800 lone", "label": "benign", "tags": ["ml"]}).encode(),  # 13 ok
        json.dumps({"id": "x6", "text": "t", "label": "benign", "note": 3}).encode(),  # 14 bad note
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(rows))
    examples, bad = load_examples(path)
    assert [e.id for e in examples] == ["v1", "b1"]
    assert [e.line for e in examples] == [1, 13]
    assert [b.line for b in bad] == [2, 3, 5, 6, 7, 8, 9, 10, 11, 14]
    messages = {b.line: b.error for b in bad}
    assert "not JSON" in messages[2]
    assert "JSON object" in messages[3]
    assert "'text'" in messages[5]
    assert "'label'" in messages[6] and "spam" in messages[6]
    assert "'tags'" in messages[7]
    assert "benign" in messages[8]
    assert "duplicate" in messages[9] and "line 1" in messages[9]
    assert "UTF-8" in messages[10]
    assert "'note'" in messages[14]
    report = evaluate(fake_moderate, path)
    assert report.n == 2 and report.bad_lines == tuple(bad)
    assert (report.tp, report.fp) == (1, 1)
    text = report.render_text()
    assert "bad lines (10, not evaluated)" in text and "line 10:" in text


def test_crlf_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes((line("v1", "BLOCKME", "violating") + "\r\n" + line("b1", "x", "benign") + "\r\n").encode())
    examples, bad = load_examples(path)
    assert [e.id for e in examples] == ["v1", "b1"] and bad == []
    with pytest.raises(OSError):
        evaluate(fake_moderate, tmp_path / "missing.jsonl")


def test_undefined_ratios_are_zero(tmp_path: Path) -> None:
    path = tmp_path / "benign.jsonl"
    path.write_text(line("b1", "x", "benign") + "\n", encoding="utf-8")
    report = evaluate(fake_moderate, path)
    assert report.confusion == Confusion(tn=1)
    assert (report.precision, report.recall, report.f1) == (0.0, 0.0, 0.0)
    empty = evaluate_examples(fake_moderate, [])
    assert empty.n == 0 and empty.us_per_listing == 0.0 and empty.per_tag == ()


def test_positive_must_be_decisions() -> None:
    with pytest.raises(TypeError):
        evaluate_examples(fake_moderate, [], positive=("block",))  # type: ignore[arg-type]


def test_render_text_is_compact_and_display_safe(small: Path) -> None:
    text = evaluate(fake_moderate, small).render_text()
    assert "precision 0.500  recall 0.500  F1 0.500  (tp 2 fp 2 fn 2 tn 1)" in text
    assert "block         P 0.500  R 0.250" in text
    assert "NOT met" in text
    assert re.search(r"^pinyin\s+2\s+2\s+0\s+1\s+1\s+0$", text, re.M)
    assert re.search(r"^model-sale\s+2\s+1\s+0\.500\s+1\s+0\.500\s+0\.500$", text, re.M)
    assert "false negatives (2):" in text and "false positives (2):" in text
    assert "RuntimeError: boom" in text
    assert "\u202e" not in text and "\\u202e" in text
    assert "[model-sale.cooccur]" in text
    limited = evaluate(fake_moderate, small).render_text(max_cases=1)
    assert "… 1 more" in limited


def test_to_dict_is_json_and_consistent(small: Path) -> None:
    report = evaluate(fake_moderate, small)
    d = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert d["schema"] == "jieyao.moderate.eval/1"
    assert (d["tp"], d["fp"], d["fn"], d["tn"], d["precision"], d["recall"]) == (2, 2, 2, 1, 0.5, 0.5)
    assert d["block_only"] == {"tp": 1, "fp": 1, "fn": 3, "tn": 2, "precision": 0.5, "recall": 0.25,
                               "f1": 0.3333}
    assert d["positive"] == ["block", "review"]
    assert d["goal"] == {"recall": 0.95, "precision": 0.98, "met": False}
    assert [c["id"] for c in d["false_negatives"]] == ["v3", "v4"]
    assert d["false_positives"][0]["decision"] == "review"
    assert {t["tag"]: t.get("recall") for t in d["per_tag"]}["pinyin"] == 0.5
    assert "recall" not in {t["tag"]: t for t in d["per_tag"]}["ml"]
    assert d["failures"][0]["error"] == "RuntimeError: boom"


def test_a_perfect_moderator_meets_the_goal(small: Path) -> None:
    labels = {json.loads(x)["text"]: json.loads(x)["label"] for x in SMALL}

    def oracle(text: str) -> ModerationResult:
        return ModerationResult(None, Decision.BLOCK if labels[text] == "violating" else Decision.PASS)

    report = evaluate(oracle, small)
    assert report.confusion == Confusion(tp=4, fp=0, fn=0, tn=3)
    assert report.meets_goal() and "goal recall ≥ 0.95 at precision ≥ 0.98: met" in report.render_text()
    assert report.false_positives == () and report.false_negatives == ()


def test_excerpt_escapes_invisible_and_truncates() -> None:
    assert excerpt("出\u200b售\u202eab\x00\ud800\n") == "出\\u200b售\\u202eab\\u0000\\ud800 "
    assert excerpt("x" * 100, 10) == "x" * 10 + "…"
    assert excerpt("\U000e0001") == "\\U000e0001"


@given(st.text(max_size=200))
def test_excerpt_never_leaks_control_characters(text: str) -> None:
    out = excerpt(text, 50)
    assert not any(unicodedata.category(ch) in ("Cf", "Cc", "Cs") for ch in out)
    assert len(out) <= 50 * 10 + 1


_pieces = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.text(max_size=40).map(lambda s: s.replace("\n", " ").replace("\r", " ").encode("utf-8", "surrogatepass")),
    st.builds(lambda i, t, lab: line(f"id{i}", t, lab).encode("utf-8", "surrogatepass"),
              st.integers(0, 5), st.text(max_size=20), st.sampled_from(["violating", "benign", "other"])),
)


@given(st.lists(_pieces, max_size=15))
def test_loader_never_raises_and_accounts_for_every_line(rows: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_bytes(b"\n".join(rows))
        examples, bad = load_examples(path)
        report = evaluate(fake_moderate, path)
    nonblank = [i for i, r in enumerate(rows, 1) if r.strip()]
    assert sorted([e.line for e in examples] + [b.line for b in bad]) == nonblank
    assert len({e.id for e in examples}) == len(examples)
    assert report.n == len(examples) and report.tp + report.fn == sum(e.violating for e in examples)


# -- the labelled set itself ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled() -> dict[str, list]:
    out = {}
    for name, path in (("dev", DEV), ("heldout", HELDOUT), ("dev2", DEV.with_name("dev2.jsonl"))):
        examples, bad = load_examples(path)
        assert bad == [], f"{path.name}: {bad}"
        out[name] = examples
    return out


def test_set_size_split_and_unique_ids(labelled: dict[str, list]) -> None:
    every = labelled["dev"] + labelled["heldout"]
    counts = Counter(e.label for e in every)
    assert counts["violating"] >= 240 and counts["benign"] >= 240, counts
    assert len({e.id for e in every}) == len(every)
    assert 0.55 <= len(labelled["dev"]) / len(every) <= 0.65
    for e in every:
        assert e.id[0] == ("v" if e.violating else "b"), e.id


def test_labels_and_tags_are_known_and_each_tag_is_well_covered(labelled: dict[str, list]) -> None:
    per_split: dict[str, Counter[str]] = {}
    for name, examples in labelled.items():
        tags: Counter[str] = Counter()
        for e in examples:
            known = EVASION_TAGS if e.violating else BENIGN_TAGS
            assert e.tags and set(e.tags) <= known, (e.id, e.tags)
            assert set(e.labels) <= LABELS, (e.id, e.labels)
            assert bool(e.labels) == e.violating, e.id
            tags.update(e.tags)
        per_split[name] = tags
    total = per_split["dev"] + per_split["heldout"]
    for tag in EVASION_TAGS | BENIGN_TAGS:
        assert per_split["dev"][tag] > 0 and per_split["heldout"][tag] > 0, f"{tag} missing from a split"
        assert total[tag] >= 15, f"{tag}: {total[tag]} listings, {dict(total)}"


def test_lengths_and_no_raw_invisible_characters(labelled: dict[str, list]) -> None:
    for e in labelled["dev"] + labelled["heldout"]:
        assert 10 <= len(e.text) <= 300, (e.id, len(e.text))
    for path in (DEV, HELDOUT):
        raw = path.read_text(encoding="utf-8")
        hidden = {hex(ord(c)) for c in raw if c != "\n" and unicodedata.category(c) in ("Cf", "Cc")}
        assert not hidden, f"{path.name}: write {hidden} as JSON escapes"


def _has_repeat(text: str) -> bool:
    return any(a == b and not a.isspace() and not a.isdigit() and a not in "!！." for a, b in pairwise(text))


LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK", "MATHEMATICAL", "CIRCLED LATIN", "NEGATIVE SQUARED LATIN", "ROMAN NUMERAL",
                     "MODIFIER LETTER")
TAG_CHECKS = {
    "zero_width": lambda e: any(c in e.text for c in "\u200b\u200c\u200d\u2060\ufeff"),
    "reversed": lambda e: "\u202e" in e.text or "reversed" in (e.note or ""),
    "fullwidth": lambda e: any("\uff01" <= c <= "\uff5e" or c == "\u3000" for c in e.text),
    "emoji": lambda e: any(ord(c) >= 0x1F000 or unicodedata.category(c) == "So" for c in e.text),
    "repeats": lambda e: _has_repeat(e.text),
    "lookalike": lambda e: any(unicodedata.name(c, "").startswith(LOOKALIKE_SCRIPTS) for c in e.text),
    "mixed": lambda e: len(set(e.tags) - {"mixed", "plain"}) >= 3,
    "plain": lambda e: e.tags == ("plain",),
}


@pytest.mark.parametrize("tag", sorted(TAG_CHECKS))
def test_tags_describe_the_text(labelled: dict[str, list], tag: str) -> None:
    tagged = [e for e in labelled["dev"] + labelled["heldout"] if tag in e.tags]
    wrong = [e.id for e in tagged if not TAG_CHECKS[tag](e)]
    assert tagged and not wrong, wrong


def test_readme_counts_match_the_data(labelled: dict[str, list]) -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (violating|benign) \| `([\w-]+)` \| (\d+) \| (\d+) \| (\d+) \|$", readme, re.M)
    assert len(rows) == len(EVASION_TAGS | BENIGN_TAGS)
    actual = {name: Counter((e.label, t) for e in examples for t in e.tags) for name, examples in labelled.items()}
    for label, tag, dev, held, total in rows:
        got = (actual["dev"][label, tag], actual["heldout"][label, tag])
        assert (int(dev), int(held), int(total)) == (*got, sum(got)), (label, tag, got)
    size_rows = re.findall(r"^\| `(\w+\.jsonl)` \| (\d+) \| (\d+) \| (\d+) \|", readme, re.M)
    for fname, viol, ben, total in size_rows:
        c = Counter(e.label for e in labelled[fname.split(".")[0]])
        assert (int(viol), int(ben), int(total)) == (c["violating"], c["benign"], c.total())


def test_the_real_engine_runs_over_dev_without_failures() -> None:
    """Not a quality gate (that is the engine's test): the harness and the engine agree on the set."""
    text_pkg = importlib.import_module("jieyao.text")
    moderate = getattr(text_pkg, "moderate", None)
    if moderate is None:
        pytest.skip("jieyao.text.moderate is not there yet")
    report: EvalReport = evaluate(moderate, DEV)
    assert report.n == 312 and report.bad_lines == ()
    assert report.tp + report.fn == 156 and report.fp + report.tn == 156
    assert report.failures == (), [(c.id, c.error) for c in report.failures]
    assert isinstance(report.bad_lines, tuple) and all(isinstance(b, BadLine) for b in report.bad_lines)
