"""benchmarks/kws_stream.py and kws_stream_score.py: the streams, the scoring, and a smoke run on a tiny int8 model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks import kws_stream as ks
from benchmarks import kws_stream_score as kss
from benchmarks import kws_stream_teacher as kst
from distill import audio_augment as aug
from distill import audio_streams as streams
from distill.audio import read_wav

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT / ".." / "shared" / "data" / "fsdd" / "recordings"
SR = 8000


def _words() -> list:
    names = [("1_george_0.wav", 0), ("2_jackson_1.wav", 1), ("0_theo_2.wav", 3)]
    return [(read_wav(FSDD / n, SR), y, n.split("_")[1]) for n, y in names]


def test_stream_holds_each_word_at_its_snr_and_enough_background():
    words = _words()
    rng = np.random.default_rng(0)
    clean_rng = np.random.default_rng(0)
    st = streams.build_stream(words, 10.0, ["white", "pink"], [], 30.0, SR, rng, (1.0, 2.0))
    x, events = st.x, st.events
    assert len(events) == 3 and st.bg >= 30 * SR
    # the noise spans tile the stream, one kind each, every word inside its own span
    assert st.spans[0] == (0, SR, "digital silence") and st.spans[-1][1] == len(x)
    assert all(a[1] == b[0] for a, b in zip(st.spans, st.spans[1:], strict=False))
    for k, (start, end, _) in enumerate(events):
        s0, e0, kind = st.spans[1 + k]
        assert s0 < start < end < e0 and kind == ["white", "pink"][k % 2]
    # replay the same draws without the words: the noise alone
    order = clean_rng.permutation(3)
    for k, ((start, end, y), i) in enumerate(zip(events, order, strict=True)):
        w = words[i][0]
        assert end - start == len(w) and y == words[i][1]
        g = int(clean_rng.uniform(1.0, 2.0) * SR)
        noise = aug.noise(["white", "pink"][k % 2], g + len(w) + SR, clean_rng, [], 5)
        s = aug.scale_to_snr(w, noise[g : g + len(w)], 10.0)
        seg = x[start - g : end + SR]
        np.testing.assert_allclose(seg[g : g + len(w)] - s * noise[g : g + len(w)], w, atol=1e-9)
        assert aug.snr_db(w, x[start:end] - w) == pytest.approx(10.0, abs=0.1)
        # rule T36c: the word's own noise, same kind and level, before it and 1 s after it
        np.testing.assert_allclose(seg[:g], s * noise[:g], atol=1e-9)
        np.testing.assert_allclose(seg[g + len(w) :], s * noise[g + len(w) :], atol=1e-9)


def test_vote_decide_with_no_votes_is_the_shipped_rule_and_votes_only_remove():
    from distill.audio_decision import DecisionRule

    rng = np.random.default_rng(3)
    kw = [0, 1, 2]
    p = rng.dirichlet(np.full(5, 0.3), size=400)  # peaky posteriors: many decisions
    for smooth, th in [(1, 0.5), (3, 0.6), (5, 0.4)]:
        rule = DecisionRule(100.0, smooth, th, 300.0)
        mean = kss.vote_decide(p, kw, smooth, 0, th, rule.refractory_steps)
        assert mean == rule.decide(p, kw) and len(mean) > 5
    # keyword 1 at 0.45 (class 4 on top), 0.95, 0.45: the mean over the first two (0.70)
    # passes 0.6 and over all three (0.617) too, but keyword 1 is top in only one of them
    q = np.full((3, 5), 0.0)
    q[[0, 2], 1], q[[0, 2], 4], q[1, 1], q[1, 4] = 0.45, 0.55, 0.95, 0.05
    assert kss.vote_decide(q, kw, 3, 0, 0.6, 10) == [(1, 1)]
    assert kss.vote_decide(q, kw, 3, 1, 0.6, 10) == [(1, 1)]
    assert kss.vote_decide(q, kw, 3, 2, 0.6, 10) == []
    # the shipped rule with votes (rule T36e) decides as the sweep's vectorized one, on
    # posteriors whose top class holds for a few inferences (as a word's does) or flickers
    held = np.repeat(rng.integers(0, 5, size=80), rng.integers(1, 9, size=80))[:400]
    p = 0.5 * np.eye(5)[held] + 0.5 * rng.dirichlet(np.full(5, 0.3), size=len(held))
    for smooth, votes, th in [(3, 2, 0.4), (7, 7, 0.3), (5, 3, 0.5)]:
        rule = DecisionRule(100.0, smooth, th, 300.0, votes)
        voted = kss.vote_decide(p, kw, smooth, votes, th, rule.refractory_steps)
        assert voted == rule.decide(p, kw) and len(voted) > 2
        assert len(voted) < len(kss.vote_decide(p, kw, smooth, 0, th, rule.refractory_steps))


def test_pick_keeps_the_false_alarm_and_wrong_keyword_bounds():
    def s(det, wrong=0.0, fa=0.0):
        return {"detected": det, "wrong_keyword": wrong, "false_alarms_per_hour": fa}

    data = {
        "20": {"4/0.7": s(0.8), "3/0.5": s(0.9, fa=2.0), "4v2/0.7": s(0.8), "2v2/0.5": s(0.9)},
        "10": {"4/0.7": s(0.6), "3/0.5": s(0.7), "4v2/0.7": s(0.6), "2v2/0.5": s(0.7, 0.03)},
    }
    assert kss.pick(data, votes=False) == "4/0.7"  # 3/0.5 has 2 false alarms an hour at 20 dB
    assert kss.pick(data, votes=True) == "4v2/0.7"  # 2v2/0.5 has 3% wrong keywords
    data["10"]["4/0.7"]["false_alarms_per_hour"] = 1.5
    assert kss.pick(data, votes=False) is None


def test_pick_with_a_latency_bound_passes_over_slow_rules():
    def s(det, lat):
        return {"detected": det, "wrong_keyword": 0.0, "false_alarms_per_hour": 0.0,
                "latency_ms_median": lat}  # fmt: skip

    data = {
        snr: {"7v7/0.6": s(0.8, 450.0), "3v2/0.6": s(0.7, 250.0), "5v5/0.6": s(0.75, None)}
        for snr in ("20", "10", "5")
    }
    assert kss.pick(data, votes=True) == "7v7/0.6"  # no bound: the best detection
    assert kss.pick(data, votes=True, max_latency_ms=300) == "3v2/0.6"  # None: nothing detected
    data["5"]["3v2/0.6"]["latency_ms_median"] = 320.0  # slow at one SNR is too slow
    assert kss.pick(data, votes=True, max_latency_ms=300) is None


def test_sweep_table_prints_both_rules_picks_with_their_latency():
    from distill.audio_decision import DecisionRule

    def s(det, lat):
        return {"detected": det, "wrong_keyword": 0.0, "false_alarms_per_hour": 0.0,
                "latency_ms_median": lat}  # fmt: skip

    data = {snr: {"5/0.5": s(0.7, 130.0), "7v7/0.6": s(0.8, 450.0)} for snr in ("20", "10", "5")}
    text = kss.sweep_table(data, DecisionRule(100.0, 5, 0.5, 1000.0))
    assert "| T36c | vote rule (k v m: m votes of k) | 7v7/0.6 | 0.800 (450 ms)" in text
    assert "| T36f (median <= 300 ms) | vote rule (k v m: m votes of k) | none qualifies" in text
    assert "| T36f (median <= 300 ms) | mean rule | 5/0.5 | 0.700 (130 ms)" in text
    data["5"]["7v7/0.6"]["latency_ms_median"] = None  # nothing detected at 5 dB
    assert "| 0.800 (-) |" in kss.sweep_table(data, DecisionRule(100.0, 5, 0.5, 1000.0))


def test_score_counts_detections_wrong_words_false_alarms_and_latency():
    kw = [0, 1]
    events = [(8000, 12000, 0), (30000, 34000, 1), (50000, 54000, 3)]  # 3: _unknown_
    decisions = [
        (13600, 0),  # word 0 detected 200 ms after its end
        (33000, 0),  # word 1: a wrong keyword ...
        (34800, 1),  # ... then the right one, 100 ms after the end
        (55000, 1),  # the unknown word accepted as a keyword
        (80000, 0),  # nothing near: a false alarm
    ]
    s = kss.score(events, decisions, kw, bg_samples=3600 * SR, sr=SR)
    assert s["keyword_words"] == 2 and s["detected"] == 1.0 and s["wrong_keyword"] == 0.5
    assert s["unknown_false_accept"] == 1.0 and s["false_alarms"] == 1
    assert s["false_alarms_per_hour"] == pytest.approx(1.0)
    assert s["latency_ms_median"] == pytest.approx(150.0)


def test_detection_by_noise_follows_the_words_spans():
    kw = [0, 1]
    events = [(8000 * k, 8000 * k + 4000, k % 2) for k in range(1, 7)]  # kinds a, b, c, a, b, c
    spans = [(0, 8000, "digital silence")] + [
        (8000 * k - 1000, 8000 * k + 7000, "abc"[(k - 1) % 3]) for k in range(1, 7)
    ]
    decisions = [(8000 * k + 4800, k % 2) for k in (1, 2, 4)]  # words 1, 2 and 4 detected
    got = kss.by_noise(events, decisions, kw, spans, SR)
    assert got == {"a": 1.0, "b": 0.5, "c": 0.0}


def test_false_alarms_by_noise_follow_the_streams_spans():
    # words end at 2 s and 5 s (accepted until 3 s and 6 s): word 0's noise is "a" up to 3 s,
    # word 1's "b" up to 6 s; then the tail in 10 s chunks: "a" (6-16 s), "b" (16-26 s)
    events = [(SR + 4000, 2 * SR, 0), (4 * SR, 5 * SR, 1)]
    spans = [(0, SR, "digital silence"), (SR, 3 * SR, "a"), (3 * SR, 6 * SR, "b"),
             (6 * SR, 16 * SR, "a"), (16 * SR, 26 * SR, "b")]  # fmt: skip
    decisions = [(SR // 2, 0), (int(2.5 * SR), 0), (int(3.5 * SR), 1), (7 * SR, 1), (20 * SR, 0)]
    got = kss.false_alarms_by_noise(events, decisions, spans, SR)
    assert got == {"a": 1, "b": 2, "digital silence": 1}  # 2.5 s is word 0's: not an alarm


def test_babble_leaves_out_the_words_own_voice_unless_asked():
    """Rule T36m: a word's babble is made of the other speakers' clips; 'all' is the old pool."""
    a, b = np.full(800, 0.5), np.full(800, -0.5)
    pool = [(a, "george"), (b, "jackson")]
    assert [w is b for w in streams.word_pool(pool, "george", own_voice=False)] == [True]
    assert len(streams.word_pool(pool, "george", own_voice=True)) == 2
    with pytest.raises(streams.UserError, match="--babble-voices"):
        streams.word_pool([(a, "george")], "george", own_voice=False)
    # a george word in george-only babble is refused; with jackson's clips it takes only his
    words = [(read_wav(FSDD / "1_george_0.wav", SR), 0, "george")]
    st = streams.build_stream(words, 10.0, ["babble"], pool, 1.0, SR, np.random.default_rng(0),
                         (1.0, 1.0))  # fmt: skip
    s0, _, kind = st.spans[1]
    noise = st.x[s0 : st.events[0][0]]
    assert kind == "babble" and np.all(noise <= 0)  # only jackson's negative clip plays there
    assert np.any(noise < 0)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
def test_c_windows_are_the_python_windows_quantized_at_the_same_hops(tmp_path):
    """The shipped C front-end fed the stream as int16 PCM gives the windows the Python front-end
    scores, at the same ends, within one input step (int16 rounding and float32 arithmetic)."""
    from devices.frontend_host import HostFrontEnd
    from distill.audio import FrontEnd
    from distill.audio_stream import stream_windows
    from ground.tflm import quantize

    recipe = yaml.safe_load((ROOT / "recipes" / "kws_stream.yaml").read_text())
    fe = FrontEnd.from_section(recipe["data"]["frontend"])
    x = streams.build_stream(_words(), 10.0, ["white", "pink"], [], 5.0, SR,
                        np.random.default_rng(1), (1.0, 2.0)).x  # fmt: skip
    feats, ends = stream_windows(fe, x, 5)
    scale, zero = 0.5, 3
    rows, c_ends = ks.c_windows(HostFrontEnd(fe.card(), tmp_path), x, 5, (scale, zero))
    np.testing.assert_array_equal(c_ends, ends)
    want = quantize(feats.reshape(len(feats), -1), scale, zero, "int8")
    diff = np.abs(rows.astype(np.int32) - want.astype(np.int32))
    assert len(rows) > 50 and diff.max() <= 1 and (diff == 0).mean() > 0.99, diff.max()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real run: FSDD digits 0-2 as a stream (keywords 1, 2), one epoch, int8 .tflite."""
    from distill import pipeline
    from export import run as export_run

    tmp = tmp_path_factory.mktemp("kws")
    recipe = yaml.safe_load((ROOT / "recipes" / "kws_stream.yaml").read_text())
    recipe["data"].update(path=str(FSDD.resolve()), glob="[0-2]_*_[0-9].wav", cache=False)
    recipe["data"]["keywords"] = [1, 2]
    recipe["data"]["decision"]["choose_minutes"] = 1.0  # the recipe's pick, on short streams
    recipe["teacher"] = {"library": ["summary_logreg"], "selection": "none"}
    recipe["transfer"]["size_multiplier"] = 2
    recipe["train"].update(epochs=1)
    recipe["export"]["thresholds"] = {"agreement": 0.0}  # one epoch: the file, not its quality
    path = tmp / "kws.yaml"
    path.write_text(yaml.safe_dump(recipe))
    pipeline.run(path, tmp / "run", progress=False)
    export_run(tmp / "run", formats=["tflite"], precisions=["int8-full"])
    return tmp / "run"


@pytest.mark.slow
def test_smoke_on_a_tiny_stream(tiny_run, tmp_path):
    argv = ["--run", str(tiny_run), "--snrs", "10", "--background-minutes", "0.5",
            "--max-words", "6", "--out-dir", str(tmp_path)]  # fmt: skip
    assert ks.main(argv) == 0
    res = json.loads((tmp_path / "kws_stream.json").read_text())
    s = res["results"]["stream"]["10"]
    assert s["keyword_words"] + s["unknown_words"] == 6 and s["background_hours"] >= 0.5 / 60
    assert 0.0 <= s["detected"] <= 1.0 and s["false_alarms"] >= 0
    assert set(res["results"]["clips"]) == {"clean", "10 dB"}
    assert res["results"]["decision"]["hop_ms"] == 100.0
    assert res["settings"]["babble_voices"] == "others"  # rule T36m's default
    md = (tmp_path / "kws_stream.md").read_text()
    assert "| SNR dB |" in md and "commit:" in md and "machine:" in md
    c_dir = tmp_path / "c"
    assert ks.main([*argv[:-1], str(c_dir), "--frontend", "c"]) == 0
    res_c = json.loads((c_dir / "kws_stream.json").read_text())
    assert res_c["settings"]["front_end"].startswith("C ")
    assert res_c["results"]["stream"]["10"]["keyword_words"] == s["keyword_words"]
    h_dir = tmp_path / "h"
    assert ks.main([*argv[:-1], str(h_dir), "--hop-ms", "40", "--smooth", "8"]) == 0
    res_h = json.loads((h_dir / "kws_stream.json").read_text())
    dec = res_h["results"]["decision"]
    assert (dec["hop_ms"], dec["inferences_per_second"], dec["smooth"]) == (40.0, 25.0, 8)
    assert dec["refractory_inferences"] == 25  # the card's 1000 ms kept
    assert res_h["settings"]["decision"].startswith("hop 40 ms, smooth 8")
    assert ks.main([*argv[:-1], str(h_dir), "--hop-ms", "50"]) == 2  # not a whole 20 ms hop


# ---- benchmarks/kws_stream_teacher.py: each model under its own pick on the same streams

KW2 = [0, 1]  # the words' classes: 0 and 1 keywords, 3 unknown; 2 is _silence_


def _teacher_cfg() -> dict:
    from distill.audio import FrontEnd
    from distill.audio_decision import DecisionRule

    fe = FrontEnd(sample_rate=SR, n_fft=256, hop=160, n_mels=40, n_mfcc=13, clip_seconds=1.0)
    rule = DecisionRule(100.0, 5, 0.5, 1000.0)
    return {"fe": fe, "rule": rule, "kw": KW2, "labels": ["1", "2", "_silence_", "_unknown_"]}


def _judged_streams() -> list:
    words = _words() * 4
    return [
        (
            f"{snr:g}",
            streams.build_stream(
                words,
                snr,
                ["white", "pink"],
                [],
                120.0,
                SR,
                np.random.default_rng([7, j]),
                (1.0, 2.0),
            ),
        )  # fmt: skip
        for j, snr in enumerate((20.0, 10.0, 5.0, 0.0))
    ]


def _knowing_model(cfg: dict, laid: list, hear: float):
    """Posteriors that know each stream: a word's class on the windows ending up to 0.5 s after
    it (its keyword with probability ``hear``, else _unknown_), _silence_ everywhere else."""
    from distill.audio_stream import stream_windows

    calls = iter(laid)

    def probs(rows: np.ndarray) -> np.ndarray:
        _, st = next(calls)
        _, ends = stream_windows(cfg["fe"], st.x, 5)
        assert len(ends) == len(rows)
        p = np.full((len(rows), 4), 0.0)
        p[:, 2] = 1.0
        rng = np.random.default_rng(len(rows))
        for _, e, y in st.events:
            near = (ends >= e) & (ends <= e + SR // 2)
            heard = y in KW2 and rng.random() < hear
            p[near] = np.eye(4)[y if heard else 3]
        return p

    return probs


def test_a_model_that_hears_every_word_is_judged_perfect_and_one_that_hears_none_is_not():
    cfg, laid = _teacher_cfg(), _judged_streams()
    res = kst.judge(cfg, laid, _knowing_model(cfg, laid, 1.0))
    assert res["pick"] is not None and res["shown_rule"] == res["pick"]
    for snr, s in res["by_snr"].items():
        assert s["detected"] == 1.0 and s["wrong_keyword"] == 0.0, snr
        assert s["false_alarms_per_hour"] == 0.0 and set(s["by_noise"].values()) == {1.0}
    deaf = kst.judge(cfg, laid, _knowing_model(cfg, laid, 0.0))
    # nothing detected: the pick still exists (its bounds are on errors), and shows 0
    assert all(s["detected"] == 0.0 for s in deaf["by_snr"].values())


@pytest.mark.slow
def test_smoke_refits_the_runs_teacher_and_scores_both(tiny_run, tmp_path):
    argv = ["--run", str(tiny_run), "--background-minutes", "0.5", "--out-dir", str(tmp_path)]
    assert kst.main(argv) == 0
    res = json.loads((tmp_path / "kws_stream_teacher.json").read_text())["results"]
    card = json.loads((tiny_run / "student" / "card.json").read_text())
    assert res["teacher"]["holdout_accuracy"] == pytest.approx(
        card["metrics"]["holdout"]["teacher"]["accuracy"]
    )  # the same recipe and seed refit the card's teacher
    assert set(res) == {"teacher", "student int8"}
    md = (tmp_path / "kws_stream_teacher.md").read_text()
    assert "| model | pick |" in md and "commit:" in md
    # another recipe's teacher, with its own front-end, on the same streams
    out = tmp_path / "logmel"
    sets = ["--frontend-set", "features=logmel", "--frontend-set", "n_mels=24"]
    assert kst.main([*argv[:-1], str(out), *sets]) == 0
    other = json.loads((out / "kws_stream_teacher.json").read_text())["results"]
    assert other["teacher"]["frontend"]["features"] == "logmel"
    assert other["teacher"]["frontend"]["n_mels"] == 24
    assert other["student int8"] == res["student int8"]  # the same streams and student
    assert other["teacher"]["changes"] == [
        "data.frontend.features=logmel",
        "data.frontend.n_mels=24",
    ]
    assert kst.main([*argv[:-1], str(out), "--frontend-set", "colour=blue"]) == 2
    assert kst.main([*argv[:-1], str(out), "--set", "nowhere.key=1"]) == 2
    assert kst.main(["--run", str(tmp_path / "none"), "--out-dir", str(out)]) == 2
    # the student alone: no teacher fitted, the same student figures
    alone = tmp_path / "alone"
    assert kst.main([*argv[:-1], str(alone), "--no-teacher"]) == 0
    only = json.loads((alone / "kws_stream_teacher.json").read_text())["results"]
    assert only == {"student int8": res["student int8"]}
    assert "not fitted (--no-teacher)" in (alone / "kws_stream_teacher.md").read_text()


def test_no_teacher_with_a_teacher_change_is_refused_before_any_work(tmp_path, capsys):
    argv = ["--run", str(tmp_path / "none"), "--no-teacher", "--set", "data.augment.seed=1"]
    assert kst.main([*argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--no-teacher fits no teacher" in err and "card" not in err  # before the run is read
