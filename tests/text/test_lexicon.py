"""The lexicon: built-in data hygiene, default channel flags, user files that extend or override, bad files."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from jieyao.text.lexicon import (
    CHANNELS,
    SCHEMA_ID,
    LexiconError,
    builtin_paths,
    default_channels,
    is_han,
    load_lexicon,
)


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def lexicon_file(**extra: object) -> dict[str, object]:
    return {"schema": SCHEMA_ID, "version": "test-1", **extra}


# -- the built-in data ----------------------------------------------------------------------------------------


def test_builtin_files_carry_schema_and_version() -> None:
    paths = builtin_paths()
    assert len(paths) >= 3
    lex = load_lexicon()
    assert set(lex.versions) == {f"builtin:{p.name}" for p in paths}
    for p in paths:
        data = json.loads(p.read_text(encoding="utf-8"))
        assert data["schema"] == SCHEMA_ID
        assert isinstance(data["version"], str) and data["version"]


def test_builtin_has_the_issue_groups() -> None:
    groups = Counter(t.group for t in load_lexicon().terms)
    for g in ("model", "dan", "faceswap", "tool", "app", "service", "tutorial", "sale", "price", "delivery",
              "contact", "handle", "allow-ml", "allow-fiction", "allow-game", "allow-tcm", "allow-news",
              "allow-detection"):
        assert groups[g] > 0, g


@pytest.mark.parametrize(("term", "group"), [
    ("AI金丹", "model"), ("AI仙丹", "model"), ("AI底丹", "model"), ("DFL丹药", "model"), ("DFL灵丹", "model"),
    ("换脸模型", "model"), ("明星实时换脸模板", "model"), ("dfm模型", "model"), ("金丹", "dan"), ("底模", "dan"),
    ("DeepFaceLab", "tool"), ("DeepFaceLive", "tool"), ("Deep-Live-Cam", "tool"), ("FaceFusion", "tool"),
    ("roop", "tool-weak"), ("roop unleashed", "tool"), ("inswapper", "tool"), ("SimSwap", "tool"),
    ("一键换脸", "app"), ("实时换脸", "app"),
    ("换脸", "faceswap"), ("代做", "service"), ("包教会", "tutorial"), ("远程安装", "tutorial"),
    ("出售", "sale"), ("月付", "sale"), ("提取码", "delivery"), ("解压即用", "delivery"), ("私聊", "contact"),
    ("同仁堂", "allow-tcm"), ("修仙", "allow-fiction"), ("警惕", "allow-news"), ("检测", "allow-detection"),
])
def test_issue_vocabulary_is_in_its_group(term: str, group: str) -> None:
    found = [t for t in load_lexicon().terms if t.text == term]
    assert found, term
    assert group in {t.group for t in found}


def test_builtin_terms_are_well_formed() -> None:
    lex = load_lexicon()
    seen: Counter[tuple[str, str]] = Counter()
    for t in lex.terms:
        assert 0 < t.weight <= 1, t
        assert t.channels <= set(CHANNELS), t
        assert "surface" in t.channels, t
        assert t.text == t.text.strip() and t.canonical, t
        # initials only where a term lists them: "jd" and "dfl" collide
        assert ("initials" in t.channels) == bool(t.initials), t
        # pinyin only for CJK terms of two or more Han chars
        if "pinyin" in t.channels:
            assert sum(map(is_han, t.text)) >= 2, t
        seen[unicodedata.normalize("NFKC", t.text).casefold(), t.group] += 1
    assert [k for k, n in seen.items() if n > 1] == []


def test_latin_terms_need_word_boundaries_and_cjk_terms_do_not() -> None:
    by_text = {t.text: t for t in load_lexicon().terms}
    assert by_text["roop"].word and by_text["DFL"].word and by_text["AI金丹"].word
    assert not by_text["换脸"].word and not by_text["金丹"].word


def test_default_channels() -> None:
    assert default_channels("金丹") == {"surface", "pinyin", "glyph", "chaizi"}
    assert default_channels("换脸软件") == {"surface", "pinyin", "glyph", "chaizi", "reversed"}
    assert default_channels("丸") == {"surface"}
    assert default_channels("DFL") == {"surface"}  # no Latin reversal ("roop" reversed is "poor")
    assert "pinyin" not in default_channels("AI丹")  # one Han char: too many homophones


def test_patterns_compile_and_carry_requires() -> None:
    lex = load_lexicon()
    ids = [p.id for p in lex.patterns]
    assert len(ids) == len(set(ids))
    price = {p.id: p for p in lex.patterns}["price-unit"]
    assert price.regex.search("29.9元") and price.regex.search("10 bucks")
    assert not price.regex.search("一块电池")


# -- user files -----------------------------------------------------------------------------------------------


def test_user_file_adds_terms_and_groups(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.json", lexicon_file(
        groups={"brand": {"weight": 0.8, "channels": ["surface"]}},
        terms=[{"group": "brand", "canonical": "AcmeSwap", "terms": ["acmeswap", "艾克换脸王"]}],
    ))
    lex = load_lexicon([path])
    mine = [t for t in lex.terms if t.group == "brand"]
    assert {t.text for t in mine} == {"acmeswap", "艾克换脸王"}
    assert all(t.weight == 0.8 and t.channels == {"surface"} and t.canonical == "AcmeSwap" for t in mine)
    assert str(path) in lex.versions
    assert any(t.text == "AI金丹" for t in lex.terms)  # built-ins still there


def test_user_file_reweights_and_removes_builtin_terms(tmp_path: Path) -> None:
    path = write(tmp_path, "tune.json", lexicon_file(terms=[
        {"group": "dan", "terms": [{"term": "金丹", "weight": 0.2}, {"term": "仙丹", "weight": 0}]},
    ]))
    lex = load_lexicon([path])
    dan = {t.text: t for t in lex.terms if t.group == "dan"}
    assert dan["金丹"].weight == 0.2 and dan["金丹"].source == str(path)
    assert "仙丹" not in dan


def test_only_user_files(tmp_path: Path) -> None:
    path = write(tmp_path, "only.json", lexicon_file(terms=[{"group": "model", "terms": ["x丹"]}]))
    lex = load_lexicon([path], include_builtin=False)
    assert [t.text for t in lex.terms] == ["x丹"]
    assert lex.patterns == ()


def test_explicit_initials_and_channels(tmp_path: Path) -> None:
    path = write(tmp_path, "i.json", lexicon_file(terms=[
        {"group": "model", "terms": [{"term": "换脸丹药", "initials": ["HLDY"], "channels": ["surface", "pinyin"]}]},
    ]))
    (t,) = load_lexicon([path], include_builtin=False).terms
    assert t.initials == ("hldy",)
    assert t.channels == {"surface", "pinyin", "initials"}


# -- bad files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "needle"), [
    ("{not json", "not valid JSON"),
    ([], "top level must be an object"),
    ({"schema": "other/1", "version": "1"}, "schema"),
    ({"schema": SCHEMA_ID}, "version"),
    (lexicon_file(terms={"group": "model"}), "terms"),
    (lexicon_file(terms=[{"group": "Model X", "terms": ["a"]}]), "group must be"),
    (lexicon_file(terms=[{"group": "model", "terms": []}]), "non-empty list"),
    (lexicon_file(terms=[{"group": "model", "terms": [{"term": "金丹", "weight": 2}]}]), "terms[0].terms[0] '金丹'"),
    (lexicon_file(terms=[{"group": "model", "terms": [{"term": "金丹", "weight": "high"}]}]), "weight must be"),
    (lexicon_file(terms=[{"group": "model", "terms": [{"term": "金丹", "channels": ["telepathy"]}]}]),
     "unknown channel"),
    (lexicon_file(terms=[{"group": "model", "terms": [{"term": "金丹", "initals": ["jd"]}]}]), "unknown key"),
    (lexicon_file(terms=[{"group": "model", "terms": [{"term": "金丹", "initials": ["j"]}]}]), "initials"),
    (lexicon_file(terms=[{"group": "model", "terms": [""]}]), "non-empty string"),
    (lexicon_file(terms=[{"group": "model", "terms": ["金\u200b丹"]}]), "control, format"),
    (lexicon_file(terms=[{"group": "model", "terms": [42]}]), "a term is a string or an object"),
    (lexicon_file(patterns=[{"id": "p", "group": "price", "regex": "(unclosed"}]), "patterns[0] 'p': bad regex"),
    (lexicon_file(patterns=[{"id": "p", "group": "price", "regex": "x*"}]), "matches the empty string"),
    (lexicon_file(channel_weights={"pinyin": 3}), "channel_weights.pinyin"),
    (lexicon_file(glyph_max_family=1), "glyph_max_family"),
    (lexicon_file(surprise=True), "unknown key"),
])
def test_bad_files_raise_naming_file_and_entry(tmp_path: Path, data: object, needle: str) -> None:
    path = write(tmp_path, "bad.json", data)
    with pytest.raises(LexiconError) as err:
        load_lexicon([path])
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_missing_file_is_a_lexicon_error(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="cannot read"):
        load_lexicon([tmp_path / "nope.json"])
