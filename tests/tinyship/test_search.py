"""Student search under device budgets: the grid, the Pareto fronts, and a reduced end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ground.errors import UserError
from ground.recipe import validate
from tinyship.search import (
    SEARCH_FIELDS,
    TEACHER_CACHE,
    candidates,
    pareto,
    search,
    spec_name,
)

ROOT = Path(__file__).resolve().parents[2]
FSDD = ROOT / ".." / "shared" / "data" / "fsdd" / "recordings"


def test_grid_expands_kind_widths_depths_and_drops_duplicates():
    grid = validate(
        "student.search",
        {"kind": ["dscnn", "cnn"], "channels": [8, 16], "blocks": [2], "first_stride": [2]},
        SEARCH_FIELDS,
    )
    specs = candidates({"kind": "dscnn", "channels": 4, "search": {}, "dropout": 0.1}, grid)
    names = [spec_name(s) for s in specs]
    assert names == ["dscnn-c8-b2-s2", "dscnn-c16-b2-s2", "cnn-8-16", "cnn-16-32"]
    assert specs[0]["dropout"] == 0.1 and "search" not in specs[0]
    strided = candidates({"kind": "dscnn"}, {**grid, "kind": ["dscnn"], "block_stride": [1, 2]})
    assert [spec_name(s) for s in strided] == [
        "dscnn-c8-b2-s2",
        "dscnn-c8-b2-s2-d2",
        "dscnn-c16-b2-s2",
        "dscnn-c16-b2-s2-d2",
    ]
    own = candidates({"kind": "dscnn", "block_stride": 2}, {**grid, "kind": ["dscnn"]})
    assert {s["block_stride"] for s in own} == {2}
    with pytest.raises(UserError, match=r"candidate dscnn-c0-b2-s2: .*'student.channels' .* got 0"):
        candidates({"kind": "dscnn"}, {**grid, "kind": ["dscnn"], "channels": [0]})
    with pytest.raises(UserError, match=r"student.search.kind' names 'rnn'"):
        candidates({"kind": "dscnn"}, {**grid, "kind": ["rnn"]})
    with pytest.raises(
        UserError,
        match=r"student.search.widths' is not known. Allowed keys: block_stride, blocks, channels",
    ):
        validate("student.search", {"widths": [8]}, SEARCH_FIELDS)


def test_ranking_on_held_out_speakers_needs_audio_with_speakers():
    from tinyship.search import ranking_recipe

    recipe = {"data": {"name": "digits"}, "student": {}}
    assert ranking_recipe(recipe, None) is recipe
    with pytest.raises(UserError, match=r"val_speakers' needs data.name: audio_folder .*'digits'"):
        ranking_recipe(recipe, ["george"])
    audio = ranking_recipe({"data": {"name": "audio_folder", "path": "x"}}, ["george"])
    assert audio["data"] == {"name": "audio_folder", "path": "x", "val_speakers": ["george"]}


def test_full_trainings_run_train_epochs_unless_the_search_says():
    from tinyship.search_grid import full_epochs

    grid = validate("student.search", {"epochs": 8}, SEARCH_FIELDS)
    assert grid["shared_transfer"] is True and grid["full_epochs"] is None
    epochs, rule = full_epochs(grid, {"epochs": 40})
    assert epochs is None and "train.epochs (40)" in rule and "full_epochs is not set" in rule
    epochs, rule = full_epochs({**grid, "full_epochs": 8}, {"epochs": 40})
    assert epochs == 8 and rule == "student.search.full_epochs (8)"


def test_other_devices_students_train_other_seeds():
    from tinyship.search_grid import seeds_per_student

    grid = validate("student.search", {"seeds": 3, "other_seeds": 1}, SEARCH_FIELDS)
    chosen = {
        "m4f": {"name": "c32"},
        "m7": {"name": "c40"},
        "m55": {"name": "c48"},
        "pi": {"name": "c48"},
        "tiny": {"name": None, "why": "no candidate fits this budget"},
    }
    assert seeds_per_student(grid, chosen, "m4f") == {"c32": 3, "c40": 1, "c48": 1}
    # a student the primary device chose keeps every seed, whoever else chose it too
    assert seeds_per_student(grid, {**chosen, "m7": {"name": "c32"}}, "m4f") == {"c32": 3, "c48": 1}
    assert seeds_per_student({**grid, "other_seeds": None}, chosen, "m4f") == {
        "c32": 3,
        "c40": 3,
        "c48": 3,
    }
    assert seeds_per_student(grid, chosen, "tiny") == {"c32": 1, "c40": 1, "c48": 1}
    with pytest.raises(UserError, match="other_seeds"):
        validate("student.search", {"other_seeds": 0}, SEARCH_FIELDS)


def test_pareto_front_keeps_the_undominated():
    pts = [
        {"name": "a", "val_accuracy": 0.90, "lat": 1.0},
        {"name": "b", "val_accuracy": 0.95, "lat": 2.0},
        {"name": "c", "val_accuracy": 0.94, "lat": 3.0},  # dominated by b
        {"name": "d", "val_accuracy": 0.99, "lat": 5.0},
        {"name": "e", "val_accuracy": 0.99, "lat": None},  # no figure: not on any front
    ]
    assert pareto(pts, "lat") == ["a", "b", "d"]


def _reduced_recipe(tmp_path: Path) -> Path:
    """A handful of FSDD clips, one-epoch candidates: the whole driver, for real."""
    recipe = yaml.safe_load((ROOT / "recipes" / "kws_fsdd.yaml").read_text())
    recipe["data"].update(path=str(FSDD.resolve()), glob="[0-2]_*_[0-7].wav", cache=False)
    recipe["teacher"] = {"library": ["summary_logreg"], "selection": "none"}
    recipe["transfer"]["size_multiplier"] = 2
    recipe["student"]["search"] = {
        "channels": [4, 8],
        "blocks": [1],
        "val_speakers": ["george", "jackson"],
        "epochs": 1,
        "rank_seeds": 2,
        "seeds": 2,
        "full_epochs": 1,
    }
    recipe["train"].update(epochs=1, batch_size=64)
    recipe["export"]["thresholds"] = {"agreement": 0.0}
    recipe["devices"]["targets"] = ["cortex-m4f-stm32l4r5"]
    recipe["devices"]["budgets"] = {
        "cortex-m4f-stm32l4r5": {"latency_ms": 20, "ram_kb": 32, "flash_kb": 64}
    }
    path = tmp_path / "kws.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def reduced_search(tmp_path_factory):
    """The reduced search with two runs at a time: (recipe path, search.json, out folder)."""
    tmp = tmp_path_factory.mktemp("search")
    path = _reduced_recipe(tmp)
    return path, search(path, tmp / "out", jobs=2), tmp / "out"


@pytest.mark.skipif(not FSDD.is_dir(), reason="../shared/data/fsdd not present")
def test_reduced_search_chooses_per_device_and_reports_the_front(reduced_search, capsys):
    path, doc, out = reduced_search
    tmp_path = out.parent
    recipe = yaml.safe_load(path.read_text())
    assert [c["name"] for c in doc["candidates"]] == [
        "dscnn-c4-b1-s2-d2",
        "dscnn-c8-b1-s2-d2",
    ]  # the student's block_stride
    # candidates are ranked on two voices nothing of theirs heard (their own teacher included);
    # the full trainings keep the recipe's own split, every speaker in training
    assert doc["validation"].startswith("speakers george, jackson (18 clips)")
    first = tmp_path / "out" / "search" / "dscnn-c4-b1-s2-d2"
    cand = json.loads((first / "seed0" / "student" / "card.json").read_text())
    # every ranking seed trains in its own folder (runs go two at a time)
    assert (first / "seed1" / "student" / "card.json").is_file()
    assert doc["execution"] == {"jobs": 2, "torch_threads_per_run": 1}
    assert cand["data"]["source"]["speakers"]["val"] == ["george", "jackson"]
    assert not {"george", "jackson"} & set(cand["data"]["source"]["speakers"]["train"])
    # each candidate is ranked by its mean over rank_seeds distillations
    for c in doc["candidates"]:
        assert len(c["val_accuracy_seeds"]) == 2
        assert c["val_accuracy"] == pytest.approx(sum(c["val_accuracy_seeds"]) / 2)
    assert "mean over 2 seeds" in doc["rule"] and doc["rank_seeds"] == 2
    # one teacher-output cache for the whole search: per teacher (the ranking one, the recipe's),
    # one transfer set (student.search.shared_transfer, the default: every seed trains on the
    # rows drawn at the search's seed) plus validation and holdout, however many students and
    # seeds train on them
    cached = sorted((tmp_path / "out" / TEACHER_CACHE).glob("*.npy"))
    assert len(cached) == 2 * (1 + 2), [p.name for p in cached]
    assert "one transfer set per teacher" in doc["transfer"]
    assert doc["full_epochs"] == {"epochs": 1, "rule": "student.search.full_epochs (1)"}
    m4f = doc["chosen"]["cortex-m4f-stm32l4r5"]["name"]
    assert "one transfer set for every seed" in doc["full"][m4f]["note"]  # the spread says so
    assert len({p.name.split("-")[0] for p in cached}) == 2
    assert not list((tmp_path / "out").glob("**/.work/cache/*.npy"))
    m4 = doc["candidates"][0]["devices"]["cortex-m4f-stm32l4r5"]
    assert m4["frontend_ms"] > 0 and m4["latency_ms"] > m4["frontend_ms"]
    chosen = doc["chosen"]["cortex-m4f-stm32l4r5"]["name"]
    assert chosen in {c["name"] for c in doc["candidates"]}
    front = doc["fronts"]["cortex-m4f-stm32l4r5"]["accuracy_vs_latency"]
    assert front and set(front) <= {c["name"] for c in doc["candidates"]}
    full = doc["full"][chosen]
    assert doc["full_seeds"] == {chosen: 2}  # the primary (only) device's student: every seed
    assert (
        full["holdout_n"] == 90
        and len(full["seeds"]) == 2
        and full["hard"]["values"][0] is not None
    )
    m4_run = doc["candidates"][0]["devices"]["cortex-m4f-stm32l4r5"]
    assert m4_run["stack"] == recipe["devices"]["stack"]  # the recipe names the stack it budgets on
    # on the M4F the RAM judged is the TFLite Micro arena plus the front-end's buffers, as the
    # recipe's devices.frontend mode holds them (window: the 1 s of int16 samples among them)
    from devices.frontend import frontend_memory

    mode = recipe["devices"].get("frontend", "window")
    card_fe = json.loads((Path(full["shipped_run"]) / "student" / "card.json").read_text())
    fe_bytes = frontend_memory(card_fe["input"]["frontend"], mode)["bytes"]
    assert m4_run["frontend_ram_bytes"] == fe_bytes and m4_run["ram_bytes"] > fe_bytes
    if mode == "window":
        fe = recipe["data"]["frontend"]
        assert fe_bytes > 2 * int(fe["sample_rate"] * fe["clip_seconds"])
    _summary_reports_seeds(tmp_path / "out", doc, chosen, capsys)
    run = Path(full["shipped_run"])
    shipped_card = json.loads((run / "student" / "card.json").read_text())
    assert len(shipped_card["data"]["source"]["speakers"]["train"]) == 6
    _members_and_validation_see_the_rows_they_were_made_for(path, run, full["seeds"][0])
    gate = json.loads((run / "export" / "exports.json").read_text())["artifacts"]
    assert full["export_gate"][0]["passed"] == all(a["parity"]["passed"] for a in gate)
    html = (run / "profile" / "report.html").read_text()
    assert "pareto latency" in html and "pareto ram" in html
    for png in ("pareto_latency.png", "pareto_ram.png"):  # budget lines: devices/pareto.py
        assert (run / "profile" / "plots" / png).stat().st_size > 0
    manifest = json.loads((run / "ship" / "manifest.json").read_text())
    assert manifest["input"]["frontend"]["hop"] == 160
    shipped = [f for f in manifest["files"] if f.get("c_files")]
    assert shipped and (run / "ship" / shipped[0]["c_files"]["dir"] / "model_data.c").is_file()


def _summary_reports_seeds(out: Path, doc: dict, chosen: str, capsys) -> None:
    """`tinyship summary` on the search folder: per chosen student, distilled and hard-label
    accuracy mean ± sd over the seeds and the gain, as the seeds' own cards have them."""
    import statistics

    from tinyship.command import main

    cards = [
        json.loads((Path(s["run"]) / "student" / "card.json").read_text())
        for s in doc["full"][chosen]["seeds"]
    ]
    dist = [c["metrics"]["holdout"]["student"]["accuracy"] for c in cards]
    hard = [c["metrics"]["holdout"]["baseline"]["accuracy"] for c in cards]
    gain = [d - h for d, h in zip(dist, hard)]
    capsys.readouterr()
    assert main(["summary", "--run", str(out)]) == 0
    text = capsys.readouterr().out
    assert "runs: 2 at a time, 1 torch thread(s) each" in text
    row = next(line for line in text.splitlines() if line.startswith(chosen + " "))
    for v in (dist, hard):
        assert f"{100 * statistics.fmean(v):.2f}% ± {100 * statistics.stdev(v):.2f}" in row
    g = statistics.fmean(gain)
    assert f"{'+' if g >= 0 else ''}{100 * g:.2f} ± {100 * statistics.stdev(gain):.2f}" in row
    assert "cortex-m4f-stm32l4r5" in row and " 2 " in row  # chosen for, seeds
    assert main(["summary", "--run", str(out), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    st = js["students"][chosen]
    assert js["schema"] == "tinyship.summary.search/1" and st["seeds"] == [0, 1]
    assert st["distilled"]["values"] == dist and st["hard"]["values"] == hard
    assert js["chosen"]["cortex-m4f-stm32l4r5"]["student"] == chosen


def _members_and_validation_see_the_rows_they_were_made_for(recipe: Path, run: Path, row: dict):
    """The library members the search fits once are fitted on normalized rows and the shipped
    student takes raw rows; each must be fed what it expects (a member fed raw MFCCs, or a
    student fed normalized ones, is near chance). Checked against independent paths: the member
    refitted here on normalized rows, and the fp32 .tflite run by the LiteRT interpreter."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from ground.recipe import load_recipe
    from tinyship.search import Teacher, absolute_paths

    t = Teacher(absolute_paths(load_recipe(recipe), recipe.parent), 0)
    ds = t.dataset
    direct = t.members[0].member.predict_proba(t.norm(ds.x_holdout)).argmax(1)  # as fitted
    card = json.loads((run / "student" / "card.json").read_text())
    got = card["metrics"]["holdout"]["members"]["summary_logreg"]["accuracy"]
    assert got == pytest.approx(float(np.mean(direct == ds.y_holdout)))
    it = Interpreter(str(run / "export" / "model.fp32.tflite"))
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    pred = []
    for x in ds.x_val.reshape(-1, 1, *ds.image_shape).astype(np.float32):
        it.set_tensor(inp, x)
        it.invoke()
        pred.append(int(it.get_tensor(outp).argmax()))
    assert row["val_accuracy"] == pytest.approx(float(np.mean(pred == ds.y_val)), abs=0.02)


@pytest.mark.skipif(not FSDD.is_dir(), reason="../shared/data/fsdd not present")
def test_search_figures_do_not_depend_on_how_many_runs_go_at_once(reduced_search, tmp_path):
    """--jobs is a speed setting: one run at a time gives the two-at-a-time figures exactly."""
    path, doc2, _ = reduced_search
    doc1 = search(path, tmp_path / "out", jobs=1)
    for a, b in zip(doc1["candidates"], doc2["candidates"]):
        assert a["name"] == b["name"] and a["val_accuracy_seeds"] == b["val_accuracy_seeds"]
        assert a["holdout_accuracy"] == b["holdout_accuracy"]
    assert doc1["chosen"] == doc2["chosen"]
    for name, full in doc1["full"].items():
        for key in ("distilled", "hard"):
            assert full[key]["values"] == doc2["full"][name][key]["values"]
        for s1, s2 in zip(full["seeds"], doc2["full"][name]["seeds"]):  # the same int8 bytes
            assert _int8_sha(s1["run"]) == _int8_sha(s2["run"])


def _int8_sha(run: str) -> str:
    exports = json.loads((Path(run) / "export" / "exports.json").read_text())
    return next(a["sha256"] for a in exports["artifacts"] if a["precision"] == "int8-full")


@pytest.mark.skipif(not FSDD.is_dir(), reason="../shared/data/fsdd not present")
def test_only_the_shipped_seed_is_exported_to_fp32_and_profiled(reduced_search):
    """Issue 39: the seeds after the first give the spread of the holdout accuracy. They export
    the full-int8 file (export gate, int8 accuracy) and nothing else, and say so in search.json
    and in their own folder; the shipped seed's run has both files, profile/ and ship/."""
    _, doc, _ = reduced_search
    for full in doc["full"].values():
        shipped, other = full["seeds"]
        assert shipped["run"] == full["shipped_run"] and shipped["not_done"] == []
        ship_run, other_run = Path(shipped["run"]), Path(other["run"])
        assert {p.name for p in (ship_run / "export").glob("*.tflite")} == {
            "model.int8-full.tflite",
            "model.fp32.tflite",
        }
        assert (ship_run / "profile" / "profile.json").is_file()
        assert (ship_run / "ship" / "manifest.json").is_file()
        assert shipped["devices"]["cortex-m4f-stm32l4r5"]["latency_ms"] > 0
        assert [p.name for p in (other_run / "export").glob("*.tflite")] == [
            "model.int8-full.tflite"
        ]
        assert not (other_run / "profile").exists() and not (other_run / "ship").exists()
        assert other["devices"] is None and other["export_gate"]["precisions"] == ["int8-full"]
        said = " ".join(other["not_done"])
        assert "fp32 not exported" in said and "not profiled" in said
        this = json.loads((other_run / "search.json").read_text())["this_run"]
        assert this["shipped"] is False and this["not_done"] == other["not_done"]
        exports = json.loads((other_run / "export" / "exports.json").read_text())["artifacts"]
        assert [a["precision"] for a in exports] == ["int8-full"]
        assert exports[0]["accuracy"] is not None and exports[0]["parity"]["n"] == 90
        assert "not profiled" in full["note"]
        from tinyship import summary

        assert "devices stage skipped: fp32 not exported" in summary.text(other_run, width=200)
        assert "devices stage skipped" not in summary.text(ship_run, width=200)


def test_a_run_that_is_not_profiled_keeps_no_profile_or_ship_of_an_earlier_search(tmp_path):
    """A search rerun into the same folder: an unshipped seed's old profile/ and ship/ describe
    another student.pt2, so they go; what the run does write stays."""
    from tinyship.search_runs import _drop_stages

    run = tmp_path / "seed1"
    for stage in ("profile", "ship", "export", "student"):
        (run / stage).mkdir(parents=True)
        (run / stage / "x.json").write_text("{}")
    _drop_stages(run, ("profile", "ship"))
    assert sorted(p.name for p in run.iterdir()) == ["export", "student"]
    _drop_stages(run, ("profile", "ship"))  # nothing there: nothing to do


@pytest.mark.skipif(not FSDD.is_dir(), reason="../shared/data/fsdd not present")
def test_a_member_fitted_in_a_worker_is_named_alike_wherever_it_goes(tmp_path):
    """The teacher-output cache is keyed by the members' fingerprints: a scikit-learn member's
    hash of its pickled estimator changes once the estimator has crossed a process (the
    unpickler interns strings), so the fit task takes it, the member keeps it, and every run finds
    the cached labels."""
    import pickle

    from distill.members import member_fingerprint
    from ground.recipe import load_recipe
    from tinyship.search import absolute_paths
    from tinyship.search_pool import fit_member_task

    path = _reduced_recipe(tmp_path)
    [member] = fit_member_task(absolute_paths(load_recipe(path), path.parent), "summary_logreg", 0)
    moved = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(member))))  # before any hash here
    fp = member_fingerprint(member)
    assert member_fingerprint(moved) == fp
    assert member_fingerprint(moved.member) != fp  # the wrapped member's own hash, unpinned
