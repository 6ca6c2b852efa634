from jieyao.model import Category, Decision, Finding, ScanReport, TargetResult, exit_code_for, join_member


def _finding(decision: Decision) -> Finding:
    return Finding(rule="x.y", category=Category.INTAKE, decision=decision, evidence=("because",))


def test_strongest_finding_decides_the_target():
    result = TargetResult(path="a", findings=[_finding(Decision.PASS), _finding(Decision.BLOCK),
                                              _finding(Decision.REVIEW)])
    assert result.decision is Decision.BLOCK


def test_a_target_with_an_error_is_never_a_silent_pass():
    assert TargetResult(path="a", error="corrupt").decision is Decision.REVIEW
    assert TargetResult(path="a", error="corrupt", findings=[_finding(Decision.BLOCK)]).decision is Decision.BLOCK


def test_exit_codes_follow_the_contract():
    ok = TargetResult(path="ok")
    flagged = TargetResult(path="f", findings=[_finding(Decision.REVIEW)])
    broken = TargetResult(path="b", error="truncated")
    assert exit_code_for([ok]) == 0
    assert exit_code_for([ok, flagged]) == 1
    assert exit_code_for([ok, flagged, broken]) == 2
    assert exit_code_for([]) == 0


def test_report_counts_and_serialises():
    report = ScanReport()
    report.add(TargetResult(path="ok", members=3, bytes_read=10))
    report.add(TargetResult(path="b", error="bad"))
    report.add(TargetResult(path="s", skipped="fifo"))
    d = report.to_dict()
    assert d["schema"] == "jieyao.scan/1"
    assert d["stats"]["targets"] == 3 and d["stats"]["errors"] == 1 and d["stats"]["skipped"] == 1
    assert d["stats"]["decisions"] == {"pass": 2, "review": 1, "block": 0}
    assert d["stats"]["members"] == 3


def test_member_paths_join_with_bang():
    assert join_member(None, "a.zip") == "a.zip"
    assert join_member("a.zip", "b/c.npy") == "a.zip!b/c.npy"
