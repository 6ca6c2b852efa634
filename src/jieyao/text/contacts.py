"""Contact extraction: how a listing tells a buyer to reach the seller or fetch the goods (phone, QQ, QQ group,
WeChat, Telegram, e-mail, URL, cloud-drive link with its extraction code), typed, with offsets into the original.

Why a pass of its own: lexicon hits say *what* is offered, contacts say it is offered for sale, and a dodged contact
(v信, ➕V, 一三八…, 薇信) is a signal in itself. It reads the normaliser's `light` view (punctuation kept, widths,
digit styles and case folded) and starts anchored regexes only where an Aho-Corasick scan found a prefix, or where
a cheap search found a digit run, an '@' or a dotted name, so text without contacts costs little. Every regex is
either anchored or guarded so that hostile input (100k digits, 100k "v信", 100k dots) stays linear.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

import ahocorasick_rs

from jieyao.text.normalise import Normalised, View
from jieyao.text.result import Contact

MAX_CHARS = 100_000
"""Characters of the light text looked at; the normaliser already caps the listing, this bounds a caller's view."""

_SURROGATES = re.compile("[\ud800-\udfff]")
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-")
_PATH_CLASS = r"a-z0-9\-._~/?#@!$&*+,;=%:"
_PATH_TRAILING = ".,;:!?*#&="


# --------------------------------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class _Prefix:
    """One keyword of contacts.json, as found by the automaton."""

    kind: str  # wechat, qq, qq_group, telegram, code, drive
    text: str
    dodge: bool = False
    weak: bool = False
    handle: str = "optional"  # telegram: 'at' needs "@handle"
    strong: bool = False  # code keywords that name an extraction code on their own (提取码)
    provider: str = ""  # drive words


@dataclass(frozen=True)
class _Vocab:
    automaton: ahocorasick_rs.AhoCorasick
    entries: tuple[tuple[_Prefix, ...], ...]
    digits: dict[int, str]
    strong_marks: frozenset[str]
    not_phone_before: tuple[str, ...]
    not_ids: frozenset[str]
    telegram_hosts: frozenset[str]
    drive_hosts: dict[str, str]
    drive_label_prefixes: dict[str, str]
    tlds: frozenset[str]
    dots: str
    code_window: int
    context_window: int
    not_phone_window: int
    wechat_val: re.Pattern[str]
    number_val: re.Pattern[str]
    telegram_val: re.Pattern[str]
    code_val: re.Pattern[str]
    long_number_run: re.Pattern[str]
    digit_group: re.Pattern[str]
    dotted: re.Pattern[str]
    host_path: re.Pattern[str]
    domain: re.Pattern[str]
    url_code: re.Pattern[str]


def _fold(word: str) -> str:
    """Vocabulary is matched against the light view, so it gets the same NFKC + casefold."""
    return unicodedata.normalize("NFKC", word).casefold()


def _load_json() -> dict[str, Any]:
    data = resources.files("jieyao.text").joinpath("data/contacts.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def _prefixes(data: dict[str, Any]) -> list[_Prefix]:
    out: list[_Prefix] = []
    for kind in ("wechat", "qq", "qq_group", "telegram"):
        for row in data[kind]:
            out.append(_Prefix(kind, _fold(row["p"]), bool(row.get("dodge")), bool(row.get("weak")),
                               str(row.get("handle", "optional"))))
    for row in data["code_keywords"]:
        out.append(_Prefix("code", _fold(row["p"]), strong=bool(row.get("strong"))))
    for word, provider in data["drive_words"].items():
        out.append(_Prefix("drive", _fold(word), provider=provider))
    return out


@lru_cache(maxsize=1)
def _vocab() -> _Vocab:
    data = _load_json()
    by_text: dict[str, list[_Prefix]] = {}
    for prefix in _prefixes(data):
        by_text.setdefault(prefix.text, []).append(prefix)
    patterns = list(by_text)
    sep = "[" + re.escape(data["separators"]) + "]{0,4}"
    fillers = "|".join(re.escape(_fold(f)) for f in sorted(data["fillers"], key=len, reverse=True))
    lead = rf"(?P<sep>{sep})(?:(?P<fill>{fillers})(?P<sep2>{sep}))?"
    chinese = "".join(data["chinese_digits"])
    digit_chars = "0-9" + chinese
    dsep = "[" + re.escape(data["digit_separators"]) + "]"
    number = rf"[{digit_chars}](?:{dsep}{{0,2}}[{digit_chars}])*"
    dots = "." + "".join(data["dot_substitutes"])
    dot = "[" + re.escape(dots) + "]"
    label = "[a-z0-9-]{1,63}"
    return _Vocab(
        automaton=ahocorasick_rs.AhoCorasick(patterns, matchkind=ahocorasick_rs.MATCHKIND_STANDARD),
        entries=tuple(tuple(by_text[p]) for p in patterns),
        digits={ord(k): v for k, v in data["chinese_digits"].items()},
        strong_marks=frozenset(_fold(m) for m in data["strong_marks"] if len(_fold(m)) == 1),
        not_phone_before=tuple(_fold(w) for w in data["not_phone_before"]),
        not_ids=frozenset(data["not_ids"]),
        telegram_hosts=frozenset(data["telegram_hosts"]),
        drive_hosts=dict(data["drive_hosts"]),
        drive_label_prefixes=dict(data["drive_label_prefixes"]),
        tlds=frozenset(data["tlds"]),
        dots=dots,
        code_window=int(data["code_window"]),
        context_window=int(data["context_window"]),
        not_phone_window=int(data["not_phone_window"]),
        wechat_val=re.compile(lead + rf"(?:(?P<id>[a-z][-_a-z0-9]{{5,19}})(?![-_a-z0-9])|(?P<num>{number}))"),
        number_val=re.compile(lead + rf"(?P<num>{number})"),
        telegram_val=re.compile(lead + r"(?P<at>@)?(?P<id>[a-z][a-z0-9_]{4,31})(?![a-z0-9_])"),
        code_val=re.compile(rf"{sep}(?:是|为)?{sep}(?P<code>[a-z0-9]{{4,8}})(?![a-z0-9])"),
        long_number_run=re.compile(rf"[{digit_chars}](?:{dsep}{{0,2}}[{digit_chars}]){{10,}}"),
        digit_group=re.compile(rf"[0-9]+|[{chinese}]+"),
        dotted=re.compile(rf"[a-z0-9]{dot}[a-z0-9]"),
        host_path=re.compile(rf"(?P<host>{label}(?:{dot}{label}){{1,8}})(?P<port>:[0-9]{{1,5}})?"
                             rf"(?P<path>[/?#][{_PATH_CLASS}]{{0,2000}})?"),
        domain=re.compile(rf"{label}(?:{dot}{label}){{1,8}}"),
        url_code=re.compile(r"[?&](?:" + "|".join(map(re.escape, data["url_code_params"]))
                            + r")=(?P<code>[a-z0-9]{4,8})(?![a-z0-9])"),
    )


# --------------------------------------------------------------------------------------------------- candidates

_PRIORITY = {"cloud_drive": 8, "telegram_link": 7, "email": 6, "url": 5, "prefixed": 4, "code": 3, "phone": 2}


class _Cand(NamedTuple):
    """A contact in light-view coordinates, before overlaps are settled. [vstart, vend) is the value, which is what
    two candidates must not share; [start, end) also covers a prefix (微信: ...)."""

    type: str
    start: int
    end: int
    vstart: int
    vend: int
    value: str
    rank: int
    dodge: bool = False
    provider: str | None = None
    code: str | None = None
    prefixed: bool = False


class _Group(NamedTuple):
    start: int
    end: int
    digits: str
    chinese: bool


def digit_groups(text: str, start: int, end: int) -> list[_Group]:
    """Split a run of digits (ASCII or Chinese numerals, with single separators) into groups: a group ends at a
    separator or where the script changes, so "99 138…" and "一138…" keep their parts apart."""
    v = _vocab()
    out: list[_Group] = []
    for m in v.digit_group.finditer(text, start, end):
        chunk = m.group()
        chinese = not chunk[0].isascii()
        out.append(_Group(m.start(), m.end(), chunk.translate(v.digits) if chinese else chunk, chinese))
    return out


def is_mobile(digits: str) -> bool:
    """A mainland mobile number: 11 digits, 1 then 3-9."""
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"


def phone_windows(groups: Sequence[_Group]) -> Iterator[tuple[int, int, str, bool]]:
    """(first group, last group, national number, with country code) for each mobile number made of whole
    consecutive groups; 86 / 0086 in front is taken along. Each window stops at 15 digits, so this is linear."""
    i = 0
    while i < len(groups):
        acc = ""
        found = None
        for j in range(i, len(groups)):
            acc += groups[j].digits
            if len(acc) > 15:
                break
            if is_mobile(acc):
                found = (i, j, acc, False)
            elif (len(acc) == 13 and acc.startswith("86") and is_mobile(acc[2:])) or (
                    len(acc) == 15 and acc.startswith("0086") and is_mobile(acc[4:])):
                found = (i, j, acc[-11:], True)
            if found:
                break
        if found:
            yield found
            i = found[1] + 1
        else:
            i += 1


def _greedy_number(groups: Sequence[_Group], most: int) -> tuple[int, str]:
    """Take groups from the first while the digits fit in `most` (a QQ number after its prefix); returns the
    number of groups taken and the digits."""
    acc = ""
    taken = 0
    for g in groups:
        if len(acc) + len(g.digits) > most:
            break
        acc += g.digits
        taken += 1
    return taken, acc


def _prefixed_number(text: str, m: re.Match[str]) -> tuple[int, str, bool, int] | None:
    """The number after a prefix: (end in light, digits, written with Chinese numerals, separators inside)."""
    groups = digit_groups(text, m.start("num"), m.end("num"))
    taken, digits = _greedy_number(groups, 11)
    if not taken:
        return None
    used = groups[:taken]
    return used[-1].end, digits, any(g.chinese for g in used), taken - 1


def _strong(prefix: _Prefix, m: re.Match[str], marks: frozenset[str]) -> bool:
    """A ':' '=' or '号' after the prefix (or inside it) makes an ordinary word a contact prefix."""
    return not marks.isdisjoint(prefix.text[-1:] + m.group("sep") + (m.group("fill") or "") + (m.group("sep2") or ""))


def _latin_glued(prefix: _Prefix, m: re.Match[str], value_start: int) -> bool:
    """'wxabc123': a Latin prefix run straight into a Latin value is one word, not prefix + id."""
    return prefix.text[-1:] in _ASCII_ALNUM and value_start == m.start() and m.group("fill") is None


def _plain_word(prefix: _Prefix, m: re.Match[str], ident: str, strong: bool) -> bool:
    """After a Latin prefix and only spaces ("wechat please"), a plain word is English, not an id; an id with a
    digit, '_' or '-' or a ':' before it is one."""
    if ident in _vocab().not_ids:
        return True
    if strong or prefix.text[-1:] not in _ASCII_ALNUM:
        return False
    return ident.isalpha()


def _after_prefix(text: str, prefix: _Prefix, start: int, end: int) -> _Cand | None:
    v = _vocab()
    if prefix.kind == "wechat":
        m = v.wechat_val.match(text, end)
    elif prefix.kind == "telegram":
        m = v.telegram_val.match(text, end)
    else:
        m = v.number_val.match(text, end)
    if m is None:
        return None
    strong = _strong(prefix, m, v.strong_marks)
    if prefix.weak and not strong:
        return None
    rank = _PRIORITY["prefixed"]
    if prefix.kind == "telegram":
        ident = m.group("id")
        vstart = m.start("at") if m.group("at") else m.start("id")
        if _latin_glued(prefix, m, vstart):
            return None
        if not m.group("at") and (prefix.handle == "at" or _plain_word(prefix, m, ident, strong)):
            return None
        return _Cand("telegram", start, m.end("id"), vstart, m.end("id"), "@" + ident, rank, prefix.dodge,
                     prefixed=True)
    if prefix.kind == "wechat" and m.group("id"):
        ident = m.group("id")
        if _latin_glued(prefix, m, m.start("id")) or _plain_word(prefix, m, ident, strong):
            return None
        return _Cand("wechat", start, m.end("id"), m.start("id"), m.end("id"), ident, rank, prefix.dodge,
                     prefixed=True)
    number = _prefixed_number(text, m)
    if number is None:
        return None
    nend, digits, chinese, seps = number
    dodge = prefix.dodge or chinese or seps > 2
    if prefix.kind == "wechat":
        if not is_mobile(digits):
            return None
    elif not (5 <= len(digits) <= 11 and digits[0] != "0"):
        return None
    return _Cand(prefix.kind, start, nend, m.start("num"), nend, digits, rank, dodge, prefixed=True)


def _chained(hits: dict[int, list[tuple[_Prefix, int]]], text: str, prefix: _Prefix, end: int,
             seps: str) -> int:
    """"QQ/微信: 123…": a prefix followed only by separators and another prefix takes that prefix's value, so
    the value search starts after the chain (at most three prefixes)."""
    for _ in range(3):
        k = end
        while k < len(text) and k - end < 4 and text[k] in seps:
            k += 1
        nxt = hits.get(k) if k > end else None  # "qq群" is one prefix, not "qq" chained to "群"
        if not nxt:
            return end
        end = max(e for _, e in nxt)
    return end


def _prefix_cands(text: str, hits: list[tuple[_Prefix, int, int]]) -> list[_Cand]:
    seps = "/|,、&和或 "
    by_start: dict[int, list[tuple[_Prefix, int]]] = {}
    for p, s, e in hits:
        if p.kind in ("wechat", "qq", "qq_group", "telegram"):
            by_start.setdefault(s, []).append((p, e))
    out: list[_Cand] = []
    for p, s, e in hits:
        if p.kind not in ("wechat", "qq", "qq_group", "telegram"):
            continue
        cand = _after_prefix(text, p, s, e)
        if cand is None:
            end = _chained(by_start, text, p, e, seps)
            if end != e:
                cand = _after_prefix(text, p, s, end)
        if cand is not None:
            out.append(cand)
    return out


def _phone_cands(text: str) -> list[_Cand]:
    v = _vocab()
    out: list[_Cand] = []
    for run in v.long_number_run.finditer(text):  # at least 11 digits: a run that fails is short, so no blow-up
        groups = digit_groups(text, run.start(), run.end())
        for i, j, digits, country in phone_windows(groups):
            start = groups[i].start
            before = text[max(0, start - v.not_phone_window):start]
            if any(word in before for word in v.not_phone_before):
                continue
            if country and start > 0 and text[start - 1] == "+":
                start -= 1
            used = groups[i:j + 1]
            seps = len(used) - 1 - (1 if country else 0)
            dodge = any(g.chinese for g in used) or seps > 2
            out.append(_Cand("phone", start, groups[j].end, start, groups[j].end, digits, _PRIORITY["phone"], dodge))
    return out


# --------------------------------------------------------------------------------------------------- links


def _walk_left(text: str, k: int, floor: int, dots: str) -> int:
    """From a label char, back to the first char of the dotted name it belongs to, never before `floor` (the end
    of what was already read) and at most 300 chars, so a run of 100k "a.a.a" stays linear."""
    limit = max(floor, k - 300)
    while k > limit:
        prev = text[k - 1]
        if prev in _LABEL_CHARS or (prev in dots and k - 2 >= limit and text[k - 2] in _LABEL_CHARS):
            k -= 1
        else:
            break
    return k


def _scheme_start(text: str, s: int) -> int | None:
    """Where 'http://' or 'https://' begins if it sits right before s."""
    if text[max(0, s - 3):s] != "://":
        return None
    for scheme in ("https", "http"):
        if text[max(0, s - 3 - len(scheme)):s - 3] == scheme:
            return s - 3 - len(scheme)
    return None


def _host_ok(labels: list[str], tlds: frozenset[str], *, loose: bool) -> bool:
    """Labels well formed; the TLD known (or, after a scheme or 'www.', at least alphabetic, or an IPv4)."""
    if any(not lab or lab[0] == "-" or lab[-1] == "-" for lab in labels):
        return False
    tld = labels[-1]
    if tld in tlds:
        return True
    if loose:
        return (tld.isalpha() and len(tld) >= 2) or (len(labels) == 4 and all(
            lab.isdigit() and len(lab) <= 3 and int(lab) < 256 for lab in labels))
    return False


def _provider(host: str, v: _Vocab) -> str | None:
    """The cloud drive behind a host: a listed host or any sub-domain of one, or a listed second-level prefix
    (lanzou* has dozens of domains: lanzoux.com, wwi.lanzoup.com ...)."""
    labels = host.split(".")
    for i in range(len(labels) - 1):
        provider = v.drive_hosts.get(".".join(labels[i:]))
        if provider:
            return provider
    if len(labels) >= 2:
        for prefix, provider in v.drive_label_prefixes.items():
            if labels[-2].startswith(prefix):
                return provider
    return None


def _recase(view: View, original: str, text: str, i: int, j: int) -> str:
    """text[i:j] with the original letter case put back (share ids, invite links and codes are case-sensitive;
    the light view is casefolded). One char out per char in, so offsets still line up."""
    if i >= j:
        return ""
    s0, e0 = view.span(i, j)
    if e0 - s0 == j - i and original[s0:e0].casefold() == text[i:j]:
        return original[s0:e0]  # the common case: only the case was folded
    out = []
    for k in range(i, j):
        c = text[k]
        s, e = view.starts[k], view.ends[k]
        if e - s == 1 and c in _ASCII_ALNUM:
            o = original[s]
            if o != c:
                if o.casefold() == c:
                    c = o
                else:
                    n = unicodedata.normalize("NFKC", o)
                    if n.casefold() == c:
                        c = n
        out.append(c)
    return "".join(out)


def _url_cand(view: View, original: str, text: str, m: re.Match[str], start: int) -> _Cand | None:
    """Classify one dotted name: telegram link, cloud-drive link (provider, ?pwd= code), url, or nothing
    ("a.b", "v1.2", "data_src.mp4" and bare domains without a path are not links)."""
    v = _vocab()
    host = m.group("host")
    dodged = False
    for sub in v.dots[1:]:
        if sub in host:
            host = host.replace(sub, ".")
            dodged = True
    labels = host.split(".")
    path = (m.group("path") or "").rstrip(_PATH_TRAILING)
    scheme = start != m.start()
    www = labels[0] == "www" and len(labels) >= 3
    if not _host_ok(labels, v.tlds, loose=(scheme or www) and not dodged):
        return None
    if not (scheme or www or len(path) > 1):
        return None
    path_start = m.start("path") if m.group("path") else m.end()
    end = path_start + len(path)
    value = text[start:m.start()] + host + (m.group("port") or "") + _recase(view, original, text, path_start, end)
    if host in v.telegram_hosts:
        if len(path) < 2:
            return None
        return _Cand("telegram", start, end, start, end, value, _PRIORITY["telegram_link"], dodged)
    provider = _provider(host, v)
    if provider:
        code_m = v.url_code.search(text, path_start, end)
        code = _recase(view, original, text, code_m.start("code"), code_m.end("code")) if code_m else None
        return _Cand("cloud_drive", start, end, start, end, value, _PRIORITY["cloud_drive"], dodged, provider, code)
    return _Cand("url", start, end, start, end, value, _PRIORITY["url"], dodged)


def _url_cands(view: View, original: str, text: str) -> list[_Cand]:
    """Links: a cheap search for "x.y" first, then back to the start of the name and one anchored match."""
    v = _vocab()
    out: list[_Cand] = []
    pos = 0
    while True:
        hit = v.dotted.search(text, pos)
        if hit is None:
            break
        s = _walk_left(text, hit.start(), pos, v.dots)
        m = None if s > 0 and text[s - 1] in "@_." else v.host_path.match(text, s)
        if m is None:
            pos = hit.end() - 1
            continue
        scheme = _scheme_start(text, s)
        cand = _url_cand(view, original, text, m, s if scheme is None else scheme)
        if cand is not None:
            out.append(cand)
        pos = max(m.end(), hit.end() - 1)
    return out


def _email_cands(text: str) -> list[_Cand]:
    """name@domain.tld, from each '@' back over at most 64 local-part chars."""
    v = _vocab()
    out: list[_Cand] = []
    at = text.find("@")
    while at != -1:
        s = at
        while s > 0 and at - s < 64 and text[s - 1] in _LOCAL_CHARS:
            s -= 1
        while s < at and not text[s].isalnum():
            s += 1
        m = v.domain.match(text, at + 1) if s < at else None
        if m is not None:
            domain = m.group()
            dodged = any(sub in domain for sub in v.dots[1:])
            for sub in v.dots[1:]:
                domain = domain.replace(sub, ".")
            if _host_ok(domain.split("."), v.tlds, loose=not dodged):
                out.append(_Cand("email", s, m.end(), s, m.end(), text[s:at + 1] + domain, _PRIORITY["email"],
                                 dodged))
                at = text.find("@", m.end())
                continue
        at = text.find("@", at + 1)
    return out


# --------------------------------------------------------------------------------------------------- codes


class _Code(NamedTuple):
    """An extraction code after its keyword: [start, end) from the keyword to the code's end."""

    start: int
    end: int
    cstart: int
    cend: int
    strong: bool


def _codes(text: str, hits: list[tuple[_Prefix, int, int]]) -> list[_Code]:
    v = _vocab()
    out: list[_Code] = []
    for p, s, e in hits:
        if p.kind != "code":
            continue
        m = v.code_val.match(text, e)
        if m is None or (p.text[-1] in _ASCII_ALNUM and m.start("code") == e):
            continue
        out.append(_Code(s, m.end("code"), m.start("code"), m.end("code"), p.strong))
    # 提取码 / 取码 / 提取 all end before the same code: keep the longest keyword, strong if any is
    best: dict[int, _Code] = {}
    for c in out:
        old = best.get(c.cstart)
        if old is None or c.start < old.start:
            best[c.cstart] = c._replace(strong=c.strong or (old is not None and old.strong))
        elif c.strong and not old.strong:
            best[c.cstart] = old._replace(strong=True)
    return sorted(best.values(), key=lambda c: c.start)


def _code_for(link: _Cand, n: int, links: list[_Cand], codes: list[_Code], code_starts: list[int],
              taken: set[int], window: int) -> int | None:
    """Index of the code that belongs to links[n]: the first one written within `window` chars after it (before
    the next link), else the last one written within `window` chars before it (after the previous link)."""
    nxt = links[n + 1].start if n + 1 < len(links) else None
    k = bisect.bisect_left(code_starts, link.end)
    if k < len(codes) and k not in taken and codes[k].start <= link.end + window and (
            nxt is None or codes[k].end <= nxt):
        return k
    if link.code is not None:
        return None
    prev_end = links[n - 1].end if n else 0
    k = bisect.bisect_left(code_starts, link.start) - 1
    if k >= 0 and k not in taken and prev_end <= codes[k].start and codes[k].end <= link.start <= codes[k].end + window:
        return k
    return None


def _attach_codes(view: View, original: str, text: str, links: list[_Cand], codes: list[_Code],
                  drives: list[tuple[_Prefix, int, int]]) -> tuple[list[_Cand], list[_Cand]]:
    """Give each cloud-drive link the extraction code written next to it, and turn the codes left over into
    cloud_drive contacts without a link when the keyword is specific (提取码) or a drive is named just before."""
    v = _vocab()
    links = sorted(links, key=lambda c: c.start)
    link_starts = [c.start for c in links]
    free = []
    for code in codes:
        i = bisect.bisect_right(link_starts, code.start) - 1
        if i < 0 or code.start >= links[i].end:
            free.append(code)
    code_starts = [c.start for c in free]
    taken: set[int] = set()
    out_links: list[_Cand] = []
    for n, link in enumerate(links):
        if link.type == "cloud_drive":
            k = _code_for(link, n, links, free, code_starts, taken, v.code_window)
            if k is not None:
                taken.add(k)
                if link.code is None:
                    link = link._replace(code=_recase(view, original, text, free[k].cstart, free[k].cend))
        out_links.append(link)
    drive_ends = sorted((e, s, p.provider) for p, s, e in drives)
    ends_only = [d[0] for d in drive_ends]
    loose: list[_Cand] = []
    for k, code in enumerate(free):
        if k in taken:
            continue
        lo = bisect.bisect_left(ends_only, code.start - v.context_window)
        hi = bisect.bisect_right(ends_only, code.start)
        near = [d for d in drive_ends[lo:hi] if d[1] >= code.start - v.context_window]
        if not (code.strong or near):
            continue
        named = [d[2] for d in sorted(near, key=lambda d: -d[1]) if d[2]]
        loose.append(_Cand("cloud_drive", code.start, code.end, code.start, code.end, "", _PRIORITY["code"],
                           provider=named[0] if named else None,
                           code=_recase(view, original, text, code.cstart, code.cend)))
    return out_links, loose


# --------------------------------------------------------------------------------------------------- settle


def _clash(a: _Cand, b: _Cand) -> bool:
    """Two candidates claim the same chars, unless both are prefixed contacts of different types that share
    their value exactly ("QQ/微信同号 12345678" is a QQ and a WeChat)."""
    if not (a.vstart < b.vend and b.vstart < a.vend):
        return False
    return not (a.prefixed and b.prefixed and a.type != b.type and (a.vstart, a.vend) == (b.vstart, b.vend))


def _settle(cands: list[_Cand]) -> list[_Cand]:
    """Most specific first: a link beats a number inside it, a prefixed id beats the same digits as a bare phone,
    and of one value with several prefixes ("微信" / "微信号") the longest span stays."""
    best: dict[tuple[str, int, int], _Cand] = {}
    for c in cands:
        key = (c.type, c.vstart, c.vend)
        old = best.get(key)
        if old is None or c.start < old.start:
            best[key] = c
    order = sorted(best.values(), key=lambda c: (-c.rank, -(c.vend - c.vstart), c.vstart))
    starts: list[int] = []
    kept: list[_Cand] = []
    for c in order:
        # kept values never overlap (bar identical shared values), so sorted by start they are sorted by end:
        # only the one just before and those starting inside c can clash
        i = bisect.bisect_left(starts, c.vstart)
        clash = i > 0 and _clash(kept[i - 1], c)
        k = i
        while not clash and k < len(kept) and kept[k].vstart < c.vend:
            clash = _clash(kept[k], c)
            k += 1
        if not clash:
            starts.insert(i, c.vstart)
            kept.insert(i, c)
    return sorted(kept, key=lambda c: (c.start, c.type))


def _disguised(view: View, original: str, start: int, end: int, s0: int, e0: int) -> bool:
    """Written to dodge: a letter or digit that is not plain ASCII in the original (full-width, styled, look-alike)
    or an invisible char the normaliser removed between two chars of the contact."""
    text = view.text
    if e0 - s0 == end - start and original[s0:e0].casefold() == text[start:end]:
        return False  # the common case: nothing but case was folded
    starts, ends = view.starts, view.ends
    for k in range(start, end):
        if k > start and (starts[k] > ends[k - 1] or starts[k] < starts[k - 1]):
            return True  # a char removed in between, or a segment shown reversed (RLO)
        c = text[k]
        if c in _ASCII_ALNUM or c in "@.":
            chunk = original[starts[k]:ends[k]]
            if chunk != c and chunk.casefold() != c:
                return True
    return False


def _contact(view: View, original: str, c: _Cand) -> Contact:
    s, e = view.span(c.start, c.end)
    dodged = c.dodge or _disguised(view, original, c.start, c.end, s, e)
    return Contact(c.type, c.value, s, e, provider=c.provider, code=c.code, obfuscated=dodged)


def _clean(text: str) -> str:
    """Lone surrogates cannot be encoded for the automaton; swap them one for one so offsets hold."""
    text = text[:MAX_CHARS]
    try:
        text.encode("utf-8")  # fails exactly when there is a lone surrogate, and costs less than a search
    except UnicodeEncodeError:
        text = _SURROGATES.sub("\ufffd", text)
    return text


def extract_contacts(norm: Normalised, *, max_contacts: int = 50) -> list[Contact]:
    """Typed contacts found in a normalised listing, in text order, at most `max_contacts`, with offsets into
    `norm.original` (end exclusive). The span covers the prefix and the value ("微信: abc123")."""
    if max_contacts <= 0:
        return []
    view = norm.light
    original = norm.original
    text = _clean(view.text)
    if not text:
        return []
    v = _vocab()
    hits = _prefix_hits(text, v)
    cands = _prefix_cands(text, hits) if hits else []
    cands += _phone_cands(text)
    links = _url_cands(view, original, text) if v.dotted.search(text) else []
    if "@" in text:
        cands += _email_cands(text)
    codes = _codes(text, hits) if hits else []
    if codes or links:
        drives = [h for h in hits if h[0].kind == "drive"]
        links, loose = _attach_codes(view, original, text, links, codes, drives)
        cands += links + loose
    if not cands:
        return []
    return [_contact(view, original, c) for c in _settle(cands)[:max_contacts]]


def _prefix_hits(text: str, v: _Vocab) -> list[tuple[_Prefix, int, int]]:
    """Every vocabulary keyword in the text (overlapping: 微信 and 微信号 both), except a Latin keyword glued to
    the letter or digit before it ("faq:" is not "q:")."""
    hits: list[tuple[_Prefix, int, int]] = []
    for idx, s, e in v.automaton.find_matches_as_indexes(text, overlapping=True):
        for p in v.entries[idx]:
            if s > 0 and p.text[0] in _ASCII_ALNUM and text[s - 1] in _ASCII_ALNUM:
                continue
            hits.append((p, s, e))
    return hits
