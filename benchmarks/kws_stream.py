"""Keyword spotting on a stream: the shipped int8 model and decision rule on test speakers' words.

Per SNR (default 20 / 10 / 5 / 0 dB) one deterministic stream: the holdout clips (FSDD's test
takes, which nothing trained on) in a seeded order, each after a gap of background and
followed by 1 s more of it (one noise kind and level per word), then background alone until
the stream holds ``--background-minutes`` of it. The noise is white,
pink and babble in turn (babble summed from the holdout clips of the non-keyword labels, so it
holds no keyword, and, since rule T36m, of the other speakers only: no talker talks over
themselves; ``--babble-voices all`` is the protocol before it), scaled per word so that the SNR
over the word's samples is the one asked.
The stream goes through the front-end a frame at a time (:mod:`distill.audio_stream`: the ring
a device keeps), the int8 .tflite scores a window every ``input.decision.hop_ms``, and the
card's decision rule (:mod:`distill.audio_decision`) declares keywords.

A keyword word is *detected* when its keyword is declared between its start and 1 s after its
end (the last window that still holds it); *wrong* when another keyword is declared there. A
non-keyword word is *falsely accepted* when any keyword is declared there. Every other decision
is a *false alarm*, counted per hour of the stream outside those intervals. *Latency* is the
end of the deciding window minus the end of the word (the device adds its inference time).
The clip table scores the holdout clips as the data set gives them (centred, zero-padded),
clean and with white noise over the window at each SNR (over the word's samples).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.kws_stream_score import by_noise, false_alarms_by_noise, sweep_table
from distill import audio_augment as aug
from distill.audio import FrontEnd
from distill.audio_decision import DECISION_FIELDS, DecisionRule
from distill.audio_stream import stream_windows
from distill.audio_streams import lay_streams, noise_kinds, split_words
from distill.data import resolve_path, validate_section
from distill.decision_scoring import LATENCY_BOUND_MS, score, sweep
from ground.errors import UserError
from ground.tflm import quantize

NAME = "kws_stream"
TARGETS = {
    "detect_10": 0.95,
    "detect_5": 0.85,
    "wrong": 0.02,
    "fa_per_h_10": 1.0,
    "latency": LATENCY_BOUND_MS,
}


class Int8Model:
    """The shipped .tflite on the host interpreter: raw feature rows in, softmax posteriors out."""

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        self.i, self.o = self.it.get_input_details()[0], self.it.get_output_details()[0]

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Posteriors of float feature rows (quantized here) or of the int8 rows the C makes."""
        shape = [int(d) for d in self.i["shape"]]
        scale, zero = self.i.get("quantization") or (0.0, 0)
        rows = np.asarray(x).reshape(len(x), *shape[1:])
        if x.dtype != np.int8 and np.issubdtype(self.i["dtype"], np.integer) and scale:
            rows = quantize(rows.astype(np.float32), scale, zero, self.i["dtype"])
        o_scale, o_zero = self.o.get("quantization") or (0.0, 0)
        out = np.empty((len(rows), int(np.prod(self.o["shape"][1:]))), np.float64)
        for k, row in enumerate(rows.astype(self.i["dtype"])):
            self.it.set_tensor(self.i["index"], row[None])
            self.it.invoke()
            v = self.it.get_tensor(self.o["index"]).reshape(-1).astype(np.float64)
            out[k] = (v - o_zero) * o_scale if np.issubdtype(self.o["dtype"], np.integer) else v
        e = np.exp(out - out.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


def int8_file(run: Path) -> Path:
    """The run's full-int8 .tflite, as exports.json names it."""
    exports = json.loads((run / "export" / "exports.json").read_text())
    for a in exports["artifacts"]:
        if a["format"] == "tflite" and a["precision"] == "int8-full":
            return run / "export" / a["file"]
    raise UserError(f"'{run}/export/exports.json' lists no int8-full tflite; export it first.")


def load_run(run: Path) -> dict[str, Any]:
    """The card's front-end, decision rule, classes and data section (paths resolved)."""
    path = run / "student" / "card.json"
    if not path.is_file():
        raise UserError(
            f"'{run}' holds no student/card.json: distil it first (python -m distill --recipe "
            "recipes/kws_stream.yaml --out build/kws-stream), or give --run the run directory."
        )
    card = json.loads(path.read_text())
    inp = card["input"]
    if "decision" not in inp:
        raise UserError(
            f"'{run}' has no input.decision in its card: distil it with data.augment and "
            "data.decision (recipes/kws_stream.yaml) first."
        )
    recipe = card["lineage"]["recipe"]
    data = validate_section(recipe["data"])
    base = Path(card["lineage"]["recipe_path"] or ".").resolve().parent
    data["path"] = str(resolve_path(data["path"], "data.path", base))
    fe = FrontEnd.from_card(inp["frontend"])
    rule = DecisionRule.from_section(
        # the card's rule keys (it also carries derived ones and words); a key an older card
        # lacks (votes, before rule T36e) takes its default
        {k: v for k, v in inp["decision"].items() if k in DECISION_FIELDS},
        1000.0 * fe.hop / fe.sample_rate,
    )
    labels = card["labels"]
    keywords = [labels.index(k) for k in inp["decision"]["keywords"]]
    return {"card": card, "data": data, "fe": fe, "rule": rule, "labels": labels, "kw": keywords}


def posteriors(
    cfg: dict, model: Int8Model, x: np.ndarray, c_front_end: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax posteriors of every window the rule's hop scores, and where each window ends:
    features from the Python front-end, or from the shipped C one (``c_front_end``, a
    :class:`devices.frontend_host.HostFrontEnd`) fed the stream as int16 PCM."""
    fe, rule = cfg["fe"], cfg["rule"]
    hop_frames = int(round(rule.hop_ms / (1000.0 * fe.hop / fe.sample_rate)))
    if c_front_end is None:
        feats, ends = stream_windows(fe, x, hop_frames)
        return model.probs(feats.reshape(len(feats), -1)), ends
    rows, ends = c_windows(c_front_end, x, hop_frames, model.i["quantization"])
    return model.probs(rows), ends


def c_windows(
    c: Any, x: np.ndarray, hop_frames: int, quant: tuple[float, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The C front-end's int8 windows at the hops :func:`stream_windows` scores, from int16 PCM."""
    pcm = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)
    return c.stream(pcm, hop_frames, float(quant[0]), int(quant[1]))


def decide(rule: DecisionRule, kw: list[int], p: np.ndarray, ends: np.ndarray) -> list:
    """(sample where the deciding window ends, class) of every decision over the stream."""
    return [(int(ends[t]), c) for t, c in rule.decide(p, kw)]


def clip_accuracy(cfg: dict, model: Int8Model, words: list, snrs: list[float], seed: int) -> dict:
    """Holdout clips centred and zero-padded, clean and with white noise at each SNR."""
    fe, kw = cfg["fe"], cfg["kw"]
    y = np.array([w[1] for w in words])
    out = {}
    for j, snr in enumerate([None, *snrs]):
        rows = []
        for i, (w, _, _) in enumerate(words):
            win = fe.fix_length(w)
            if snr is not None:
                rng = aug.row_rng(seed, 10 + j, i)
                bg = aug.white(len(win), rng)
                span = slice((len(win) - len(w)) // 2, (len(win) - len(w)) // 2 + len(w))
                span = span if len(w) < len(win) else slice(0, len(win))
                win = np.clip(win + aug.scale_to_snr(win[span], bg[span], snr) * bg, -1, 1)
            rows.append(win)
        pred = model.probs(fe(np.stack(rows)).reshape(len(rows), -1)).argmax(1)
        is_kw = np.isin(y, kw)
        out["clean" if snr is None else f"{snr:g} dB"] = {
            "accuracy": float((pred == y).mean()),
            "keyword_accuracy": float((pred[is_kw] == y[is_kw]).mean()) if is_kw.any() else None,
            "n": len(y),
        }
    return out


def override_rule(cfg: dict, args) -> None:
    """The card's decision rule with the hop, smoothing, threshold or votes asked on the command
    line (the card's refractory period kept)."""
    over = {
        "hop_ms": args.hop_ms,
        "smooth": args.smooth,
        "threshold": args.threshold,
        "votes": args.votes,
    }
    if any(v is not None for v in over.values()):
        r = cfg["rule"]
        cfg["rule"] = DecisionRule.from_section(
            {"refractory_ms": r.refractory_ms}
            | {k: getattr(r, k) if v is None else v for k, v in over.items()},
            1000.0 * cfg["fe"].hop / cfg["fe"].sample_rate,
        )


def run(args) -> common.Report:
    cfg = load_run(args.run)
    override_rule(cfg, args)
    model = Int8Model(args.file or int8_file(args.run))
    c_fe = None
    if args.frontend == "c":
        import tempfile

        from devices.frontend_host import HostFrontEnd

        if model.i["dtype"] != np.int8:
            raise UserError(
                f"--frontend c feeds the C's int8 windows to the model, and '{args.file}' takes "
                f"{np.dtype(model.i['dtype']).name}: give a full-int8 .tflite (or drop --file)."
            )
        with tempfile.TemporaryDirectory() as tmp:  # the library stays loaded once opened
            c_fe = HostFrontEnd(cfg["card"]["input"]["frontend"], Path(tmp))
    words = split_words(cfg, args.max_words, args.split)
    _, kinds = noise_kinds(words, cfg["kw"])
    snrs = [float(s) for s in args.snrs.split(",")]
    sr, r = cfg["fe"].sample_rate, cfg["rule"]
    rep = common.Report(
        args.name,
        "Keyword spotting on a stream (int8 model, decision rule of the card)",
        common.command_line(NAME),
        {
            "run": str(args.run),
            "snrs_db": snrs,
            "background_minutes": args.background_minutes,
            "gap_s": list(args.gap),
            "noise": kinds,
            "babble_voices": args.babble_voices,
            "seed": args.seed,
            "words": len(words),
            "split": args.split,
            "front_end": "C (devices/frontend_c, host gcc, int16 PCM in)"
            if c_fe
            else "Python (distill.audio_stream)",
            "decision": f"hop {r.hop_ms:g} ms, smooth {r.smooth}, threshold {r.threshold:g}"
            + (f", votes {r.votes}" if r.votes else ""),
        },
    )
    rule = cfg["rule"].card(cfg["labels"], cfg["kw"], 1000.0 * cfg["fe"].hop / sr)
    same = rule["rule"] == cfg["card"]["input"]["decision"]["rule"]
    rep.add(f"Decision rule ({'card input.decision' if same else 'overridden'}): {rule['rule']}.\n")
    rows, data = [], {"stream": {}, "decision": rule}
    laid = lay_streams(words, cfg["kw"], snrs, args.background_minutes, sr, args.seed, args.gap,
                       own_voice=args.babble_voices == "all")  # fmt: skip
    for snr, st in laid:
        p, ends = posteriors(cfg, model, st.x, c_fe)
        decs = decide(cfg["rule"], cfg["kw"], p, ends)
        s = score(st.events, decs, cfg["kw"], st.bg, sr)
        s["detected_by_noise"] = by_noise(st.events, decs, cfg["kw"], st.spans, sr)
        s["false_alarms_by_noise"] = false_alarms_by_noise(st.events, decs, st.spans, sr)
        data["stream"][f"{snr:g}"] = s
        if args.sweep:
            data.setdefault("sweep", {})[f"{snr:g}"] = sweep(cfg, p, ends, st.events, st.bg, sr)
        rows.append([f"{snr:g}", s["keyword_words"], s["detected"], s["wrong_keyword"],
                     s["unknown_false_accept"], s["false_alarms"], s["background_hours"],
                     s["false_alarms_per_hour"], s["latency_ms_median"], s["latency_ms_p90"],
                     " / ".join(f"{s['detected_by_noise'].get(k, 0.0):.3f}" for k in kinds),
                     " / ".join(str(s["false_alarms_by_noise"].get(k, 0)) for k in kinds)])  # fmt: skip
    rep.add("## Streams\n\n" + common.table(
        ["SNR dB", "keyword words", "detected", "wrong keyword", "unknown accepted",
         "false alarms", "background h", "FA / h", "latency ms median", "latency ms p90",
         f"detected ({' / '.join(kinds)})", "false alarms (same order)"], rows))  # fmt: skip
    if args.sweep:
        rep.add(sweep_table(data["sweep"], cfg["rule"]))
    clips = clip_accuracy(cfg, model, words, snrs, args.seed)
    data["clips"] = clips
    rep.add("## Holdout clips (centred, white noise over the window)\n\n" + common.table(
        ["condition", "n", "accuracy", "keyword clips"],
        [[k, v["n"], v["accuracy"], v["keyword_accuracy"]] for k, v in clips.items()]))  # fmt: skip
    rep.data = data
    return rep


def run_and_write(ap: Any, run_: Any, argv: list[str] | None) -> int:
    """A stream benchmark's main: parse, run, write the result files; bad input: one line, exit 2."""
    args = common.parse(ap, argv)
    try:
        rep = run_(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rep.write(args.out_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = common.parser(NAME, __doc__)
    ap.add_argument("--run", type=Path, default=common.ROOT / "build" / "kws-stream")
    ap.add_argument("--file", type=Path, default=None, help="a .tflite other than the run's int8")
    ap.add_argument("--snrs", default="20,10,5,0", help="comma list of SNRs (dB)")
    ap.add_argument("--background-minutes", type=float, default=60.0)
    ap.add_argument("--gap", type=float, nargs=2, default=(1.0, 2.5), help="seconds before a word")
    ap.add_argument("--max-words", type=int, default=None, help="a seeded subset (smoke runs)")
    ap.add_argument(
        "--split",
        choices=("holdout", "val"),
        default="holdout",
        help="whose words: the holdout (the figures), or the validation clips (choosing a rule)",
    )
    ap.add_argument(
        "--sweep", action="store_true", help="also score other smoothing lengths and thresholds"
    )
    ap.add_argument("--smooth", type=int, default=None, help="decision smooth (default: card's)")
    ap.add_argument(
        "--threshold", type=float, default=None, help="decision threshold (default: card's)"
    )
    ap.add_argument(
        "--votes", type=int, default=None, help="decision votes, 0 for none (default: card's)"
    )
    ap.add_argument("--hop-ms", type=float, default=None, help="inference hop (default: card's)")
    ap.add_argument(
        "--frontend",
        choices=("python", "c"),
        default="python",
        help="streams through the Python front-end or the shipped C one compiled by the host's gcc "
        "(int16 PCM in, the C's int8 windows to the model); the clip table stays Python's",
    )
    ap.add_argument(
        "--babble-voices",
        choices=("others", "all"),
        default="others",
        help="a word's babble from the other speakers' non-keyword clips (rule T36m), or from "
        "every speaker's, the word's own included (the protocol before T36m)",
    )
    ap.add_argument("--name", default=NAME, help="result file name (e.g. kws_stream_val)")
    return run_and_write(ap, run, argv)


if __name__ == "__main__":
    sys.exit(main())
