"""bucilua_munge (issue 40): rules B40a (per seed) and B40b (the 3-problem share from seed-mean
RMSEs against 0.885), the epochs early stopping gets, the library, and the quick path end to end:
both cache stages, JSON first, the markdown rendered from the JSON with the verdicts first."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.parametrize(
    "net, mimic, seed_verdicts, verdict",
    [
        ([0.30, 0.31, 0.30], [0.28, 0.29, 0.285], ["PASS", "PASS", "PASS"], "PASS"),
        ([0.30, 0.31, 0.30], [0.28, 0.32, 0.285], ["PASS", "FAIL", "PASS"], "FAIL"),
        (
            [0.30, 0.30, 0.30],
            [0.299, 0.27, 0.298],
            ["PASS", "PASS", "PASS"],
            "FAIL",
        ),  # mean <= 2 sd
    ],
)
def test_rule_b40a_per_seed_and_no_precheck_in_the_verdict(net, mimic, seed_verdicts, verdict):
    from benchmarks.bucilua_rule import evaluate_problem

    ens = [n - 0.001 for n in net]  # an ensemble gain of 0.001: reported, never the verdict
    out = evaluate_problem([0, 1, 2], net, mimic, ens)
    assert [r["verdict"] for r in out["per_seed"]] == seed_verdicts
    assert out["verdict"] == verdict
    assert out["ensemble_gain"] == pytest.approx(0.001)


def test_rule_b40a_needs_two_paired_seeds():
    from benchmarks.bucilua_rule import evaluate_problem

    with pytest.raises(ValueError, match=r"needs >= 2 paired seeds; got 1 net"):
        evaluate_problem([0], [0.3], [0.2], [0.1])


def _three(letter_p1_mimic: list[float]) -> dict:
    """Three problems; letter.p1 has 5 seeds and a small gain, as in the run."""
    return {
        "adult": {"seeds": [0, 1, 2], "net": [0.32] * 3, "ens": [0.30] * 3, "mimic": [0.31] * 3},
        "letter.p1": {
            "seeds": [0, 1, 2, 3, 4],
            "net": [0.100] * 5,
            "ens": [0.095, 0.095, 0.095, 0.095, 0.0999],
            "mimic": letter_p1_mimic,
        },
        "letter.p2": {"seeds": [0, 1, 2], "net": [0.22] * 3, "ens": [0.20] * 3, "mimic": [0.2] * 3},
    }


def test_rule_b40b_takes_the_share_from_seed_means_against_0885():
    from benchmarks.bucilua_rule import evaluate_share

    data = _three([0.094] * 5)
    low = evaluate_share(data)
    # each problem's seed mean first, then the mean over the problems (not a mean of per-seed shares)
    net, ens, mim = (
        np.mean([np.mean(v[k]) for v in data.values()]) for k in ("net", "ens", "mimic")
    )
    assert low["share"] == pytest.approx((net - mim) / (net - ens))
    assert low["share"] != pytest.approx(np.mean([r["share"] for r in low["per_seed"]]))
    assert low["share"] < 0.885 and low["verdict"] == "FAIL"
    high = evaluate_share(
        {**_three([0.094] * 5), "adult": {**_three([0])["adult"], "mimic": [0.299] * 3}}
    )
    assert high["share"] >= 0.885 and high["verdict"] == "PASS"
    assert [r["seed"] for r in high["per_seed"]] == [0, 1, 2]  # the seeds all three share
    assert high["bootstrap"]["low"] <= high["share"] <= high["bootstrap"]["high"]
    with pytest.raises(ValueError, match="needs the three problems"):
        evaluate_share({"adult": _three([0])["adult"]})


def test_early_stopping_has_60_epochs_at_400k_rows_and_more_below():
    from benchmarks.bucilua_rule import SIZES, epochs_for

    assert epochs_for(400_000) == (60, 10)
    assert epochs_for(1_000_000)[0] == 60
    epochs = [epochs_for(n)[0] for n in SIZES]
    assert epochs == sorted(epochs, reverse=True) and min(epochs) >= 60
    assert SIZES[0] == 25_000 and SIZES[-1] == 400_000


def test_the_library_has_50_plus_models_of_the_papers_kinds():
    from benchmarks.bucilua_library import library_grid

    lib = dict(library_grid(0))
    assert len(lib) >= 50
    for kind in ("svm_rbf", "svm_linear", "svm_poly", "knn", "logreg", "naive_bayes", "mlp",
                 "bagged_trees", "rf_", "boosted_d", "boosted_stumps", "tree_d"):  # fmt: skip
        assert any(n.startswith(kind) for n in lib), kind
    deep = lib["boosted_dunlimited_lr0.05_500"]
    assert deep.max_depth is None and deep.max_leaf_nodes is None and deep.max_iter >= 500


def _quick(tmp_path, monkeypatch, name: str, *flags: str) -> tuple[str, dict]:
    from benchmarks import bucilua_munge

    monkeypatch.setenv("TINYSHIP_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / name
    assert bucilua_munge.main(["--quick", "--out-dir", str(out), *flags]) == 0
    md = (out / "bucilua_munge.md").read_text()
    return md, json.loads((out / "bucilua_munge.json").read_text())


def test_quick_run_verdicts_first_and_every_line_from_the_json(tmp_path, monkeypatch):
    """Three problems at toy size in 2 worker processes; letter.p1 has a third seed; RANDOM and
    NBE only on the curve seed; a rerun is all cache hits."""
    from benchmarks import bucilua_report

    md, rec = _quick(tmp_path, monkeypatch, "pool", "--workers", "2")
    res = rec["results"]
    for k in ("commit", "command", "machine", "wall_s", "created"):
        assert rec[k] is not None, k
    assert [len(v["runs"]) for v in res["problems"].values()] == [2, 3, 2]
    assert md.index("Rule B40b") < md.index("**Verdict (rule B40b):") < md.index("Rule B40a")
    assert md.index("**Verdicts (rule B40a):") < md.index("- command:") < md.index("## adult")
    assert f"**Verdict (rule B40b): {res['rules']['B40b']['verdict']}**" in md
    for p, r in res["rules"]["B40a"].items():
        assert f"{p} **{r['verdict']}**" in md
    methods = [{r["method"] for r in run["rows"]} for run in res["problems"]["adult"]["runs"]]
    assert {"munge", "random", "nbe"} <= methods[0] and not {"random", "nbe"} & methods[1]
    net = next(r for r in res["problems"]["adult"]["runs"][0]["rows"] if r["method"] == "net 4k")
    assert net["max_epochs"] == 20 and "by validation RMSE" in net["note"]
    assert "MUNGE size curve" in md and "mimic fp32 (ONNX)" in md
    assert (tmp_path / "pool" / "bucilua_munge.png").read_bytes()[:4] == b"\x89PNG"
    assert bucilua_report.render(rec) == md
    assert bucilua_report.main([str(tmp_path / "pool" / "bucilua_munge.json")]) == 0
    assert (tmp_path / "pool" / "bucilua_munge.md").read_text() == md
    _, again = _quick(tmp_path, monkeypatch, "again")
    assert again["settings"]["cache_hits (teacher, nets)"] == [7, 7]
    assert again["results"]["rules"] == res["rules"]


def test_markdown_verdicts_follow_the_json_and_refuse_a_stale_one(tmp_path, monkeypatch):
    from benchmarks.bucilua_report import render, rules_of

    _, rec = _quick(tmp_path, monkeypatch, "q")
    res, top = rec["results"], rec["settings"]["judged_size"]
    for run in res["problems"]["letter.p2"]["runs"]:  # the mimic now loses to the 4k net
        for row in run["rows"]:
            if row["method"] == "munge" and row["size"] == top:
                row["rmse"] = 0.9
    with pytest.raises(ValueError, match="do not follow from the per-seed RMSEs"):
        render(rec)
    res["rules"] = rules_of(res, top)
    md = render(rec)
    assert "letter.p2 **FAIL**" in md
    assert res["rules"]["B40b"]["verdict"] == "FAIL"
    assert "**Verdict (rule B40b): FAIL**" in md
    seed0 = res["rules"]["B40a"]["letter.p2"]["per_seed"][0]
    assert f"| letter.p2 | 0 | {seed0['net_4k']:.4f} | 0.9000 |" in md
