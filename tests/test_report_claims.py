import pytest

from stg_lightning.report.claims import CLAIMS, Claim, claims_table, evaluate_claims, mean_std

BEATS = Claim("a beats b and c", "Table X", "gyt", "pointing", "a", ("b", "c"), margin=0.1)


def _results(a: float, b: float, c: float) -> dict:
    return {"gyt": {"a": {"pointing": a}, "b": {"pointing": b}, "c": {"pointing": c}}}


def test_a_claim_holds_only_when_the_lead_over_the_best_rival_reaches_the_margin():
    (result,) = evaluate_claims({0: _results(0.7, 0.5, 0.55)}, [BEATS])
    assert result.rivals == ["c"] and result.leads == [pytest.approx(0.15)] and result.holds
    (result,) = evaluate_claims({0: _results(0.6, 0.5, 0.55)}, [BEATS])
    assert result.leads == [pytest.approx(0.05)] and not result.holds


def test_over_seeds_a_claim_must_hold_on_every_seed_unless_it_is_about_the_mean():
    seeds = {0: _results(0.9, 0.5, 0.5), 1: _results(0.55, 0.5, 0.5)}  # leads 0.4 and 0.05
    (every,) = evaluate_claims(seeds, [BEATS])
    assert not every.holds
    (mean,) = evaluate_claims(seeds, [Claim("m", "", "gyt", "pointing", "a", ("b",), 0.1, on_mean=True)])
    assert mean.holds  # mean lead 0.225


def test_strict_and_or_equal_comparisons():
    tie = {0: _results(0.5, 0.5, 0.5)}
    (strict,) = evaluate_claims(tie, [Claim("s", "", "gyt", "pointing", "a", ("b",))])
    (equal,) = evaluate_claims(tie, [Claim("e", "", "gyt", "pointing", "a", ("b",), or_equal=True)])
    assert not strict.holds and equal.holds


def test_claims_whose_rows_are_missing_are_left_out_not_passed():
    assert evaluate_claims({0: {"gyt": {"a": {"pointing": 1.0}}}}, [BEATS]) == []
    demo = {"gyt": {k: {"pointing": 0.5, "video_map": 0.5} for k in ("full", "zero_shot")}}
    kept = [r.claim for r in evaluate_claims({0: demo})]
    assert kept == [c for c in CLAIMS if c.split == "gyt" and c.rivals == ("zero_shot",)]


def test_claims_table_prints_mean_std_and_the_verdict():
    seeds = {0: _results(0.8, 0.5, 0.6), 1: _results(0.9, 0.5, 0.6)}
    table = claims_table(evaluate_claims(seeds, [BEATS]), {"a": "model A", "c": "model C"})
    line = table.splitlines()[2]
    assert "model A" in line and "model C" in line
    assert "0.850 ± 0.050" in line and "0.250 ± 0.050" in line and "**yes**" in line
    assert mean_std([0.25]) == "0.250"
