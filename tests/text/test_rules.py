"""Co-occurrence rules: the A & B ~ C semantics, windows, weights, scores, user rule files, bad files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jieyao.model import Decision
from jieyao.text.lexicon import load_lexicon
from jieyao.text.rules import (
    SCHEMA_ID,
    Evidence,
    RulesError,
    RuleSet,
    check_groups,
    load_rules,
    noisy_or,
)


def rules_file(tmp_path: Path, rules: list[dict[str, object]], name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"schema": SCHEMA_ID, "version": "t1", "rules": rules}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def rule(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "r", "label": "lab", "decision": "block", "all": [["a"], ["b"]],
                               "why": "a with b"}
    base.update(kw)
    return base


def ruleset(tmp_path: Path, *specs: dict[str, object]) -> RuleSet:
    return load_rules([rules_file(tmp_path, list(specs))], include_builtin=False)


def ev(group: str, start: int, end: int | None = None, weight: float = 0.5) -> Evidence:
    return Evidence(group, start, start + 1 if end is None else end, weight)


def fired(rs: RuleSet, *evidence: Evidence) -> list[str]:
    return [f.rule.id for f in rs.evaluate(list(evidence))]


def test_all_sets_must_be_satisfied(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule())
    assert fired(rs, ev("a", 0), ev("b", 5)) == ["r"]
    assert fired(rs, ev("a", 0), ev("a", 5)) == []
    assert fired(rs, ev("b", 0)) == []


def test_any_group_of_a_set_satisfies_it(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(all=[["a", "x"], ["b"]]))
    assert fired(rs, ev("x", 0), ev("b", 3)) == ["r"]


def test_none_vetoes_anywhere_in_the_listing(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(none=["allow-*"], window=10))
    assert fired(rs, ev("a", 0), ev("b", 2)) == ["r"]
    assert fired(rs, ev("a", 0), ev("b", 2), ev("allow-news", 500)) == []
    assert fired(rs, ev("a", 0), ev("b", 2), ev("allowance", 1)) == ["r"]  # "allow-*" is a prefix with the dash


def test_window_bounds_the_span_of_the_chosen_evidence(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(window=10))
    assert fired(rs, ev("a", 0, 2), ev("b", 8, 10)) == ["r"]
    assert fired(rs, ev("a", 0, 2), ev("b", 9, 11)) == []
    # a far pair and a near pair: the near one fires
    assert fired(rs, ev("a", 0), ev("b", 100), ev("a", 95)) == ["r"]


def test_min_weight_ignores_weak_evidence(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(min_weight=0.5))
    assert fired(rs, ev("a", 0, weight=0.4), ev("b", 2)) == []
    assert fired(rs, ev("a", 0, weight=0.5), ev("b", 2)) == ["r"]


def test_repeated_sets_need_distinct_evidence(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(all=[["a"], ["t"], ["t", "s"]]))
    assert fired(rs, ev("a", 0), ev("t", 2)) == []
    assert fired(rs, ev("a", 0), ev("t", 2), ev("t", 4)) == ["r"]
    assert fired(rs, ev("a", 0), ev("t", 2), ev("s", 4)) == ["r"]


def test_score_is_noisy_or_of_the_best_choice(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule())
    (f,) = rs.evaluate([ev("a", 0, weight=0.5), ev("a", 1, weight=0.9), ev("b", 3, weight=0.6)])
    assert [e.weight for e in f.evidence] == [0.9, 0.6]
    assert f.score == pytest.approx(1 - 0.1 * 0.4)
    assert noisy_or([]) == 0 and noisy_or([1.0, 0.2]) == 1.0


def test_wildcard_groups_in_sets(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(all=[["a"], ["contact:*"]]))
    assert fired(rs, ev("a", 0), ev("contact:qq", 2)) == ["r"]
    assert fired(rs, ev("a", 0), ev("contact", 2)) == []


def test_many_evidence_items_stay_bounded(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(window=5), rule(id="r2", all=[["a"], ["b"], ["c"]], window=3))
    evidence = [ev("a" if k % 2 else "b", k * 10) for k in range(20_000)]
    t0 = time.perf_counter()
    rs.evaluate(evidence)
    assert time.perf_counter() - t0 < 2.0


# -- files ----------------------------------------------------------------------------------------------------


def test_builtin_rules_load_and_name_only_known_groups() -> None:
    rs = load_rules()
    ids = [r.id for r in rs.rules]
    for needed in ("model-sale", "software-sale", "custom-service", "tutorial", "contact-solicitation"):
        assert needed in ids
    assert all(r.why for r in rs.rules)
    check_groups(rs, load_lexicon().group_names())
    assert {r.decision for r in rs.rules} == {Decision.BLOCK, Decision.REVIEW, Decision.PASS}


def test_user_rules_add_replace_and_disable(tmp_path: Path) -> None:
    path = rules_file(tmp_path, [
        rule(id="my-rule"),
        {"id": "model-sale", "label": "model-sale", "decision": "review", "all": [["model"]], "why": "softer"},
        {"id": "tutorial", "disabled": True},
    ])
    rs = load_rules([path])
    by_id = {r.id: r for r in rs.rules}
    assert "my-rule" in by_id and "tutorial" not in by_id
    assert by_id["model-sale"].decision == Decision.REVIEW and by_id["model-sale"].source == str(path)
    builtin_order = [r.id for r in load_rules().rules]
    assert [r.id for r in rs.rules].index("model-sale") == builtin_order.index("model-sale")  # replaced in place


def test_check_groups_catches_a_typo(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule(all=[["modle"], ["sale"]]))
    with pytest.raises(RulesError, match="'modle'"):
        check_groups(rs, load_lexicon().group_names())
    check_groups(ruleset(tmp_path, rule(all=[["model"], ["contact:qq", "signal:zero_width"]])),
                 load_lexicon().group_names())


@pytest.mark.parametrize(("spec", "needle"), [
    (rule(decision="ban"), "decision"),
    (rule(all=[]), "\"all\""),
    (rule(all=[["a"], []]), "all[1]"),
    (rule(all=[["Bad Group"]]), "bad group name"),
    (rule(none="allow-*"), "none"),
    (rule(window=0), "window"),
    (rule(window=True), "window"),
    (rule(min_weight=1.5), "min_weight"),
    (rule(why=""), "why"),
    (rule(label=""), "label"),
    (rule(id="Bad Id"), "id"),
    (rule(extra=1), "unknown key"),
])
def test_bad_rules_raise_naming_file_and_rule(tmp_path: Path, spec: dict[str, object], needle: str) -> None:
    path = rules_file(tmp_path, [spec])
    with pytest.raises(RulesError) as err:
        load_rules([path])
    assert str(path) in str(err.value) and needle in str(err.value)


def test_duplicate_ids_in_one_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="more than once"):
        load_rules([rules_file(tmp_path, [rule(), rule()])])


@pytest.mark.parametrize(("text", "needle"), [
    ("[", "not valid JSON"),
    ('{"schema": "jieyao.text.rules/1", "version": "1"}', "\"rules\" must be a list"),
    ('{"schema": "jieyao.text.lexicon/1", "version": "1", "rules": []}', "schema"),
])
def test_bad_rule_files(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=needle):
        load_rules([path])
