"""Which student does the demo distil into? Distilled vs hard-label baseline, per student, over seeds.

Issue 2 asks the demo's distilled student to match or beat the same architecture trained on
hard labels. On digits both reach 98-99.5% (about 2-6 errors in 359 holdout rows), so one seed
cannot tell a real gain from noise: the demo's former CNN [32, 64] tied its baseline on one
x86 machine and lost by one row on another (oneDNN picks different kernels per CPU, so float
sums, and the 30 epochs after them, differ). This benchmark runs the demo recipe's teacher and
MUNGE transfer set once (seed --seed, as in the demo) and then, for each student spec and each
training seed (initialisation and batch order), trains the distilled student and its hard-label
baseline exactly as the distill stage does (same train section, same early stopping on
validation). It counts holdout rows each gets right.

Students whose convolutions are narrow are the ones distillation helps: they cannot fit the
training set's quirks on their own, and the teacher's soft targets on the MUNGE rows tell them
more per example (Hinton et al. 2015 §3; Bucilua et al. 2006 §4). Wide ones match their baseline.
"""

from __future__ import annotations

import numpy as np

from benchmarks import common

SPECS = {  # label -> student spec overrides on recipes/demo.yaml's student section
    "cnn [32, 64] (earlier demo)": {"channels": [32, 64], "hidden": 0},
    "cnn [16, 128] (demo)": {"channels": [16, 128], "hidden": 0},
    "cnn [16, 32] + 128 hidden": {"channels": [16, 32], "hidden": 128},
    "cnn [8, 16]": {"channels": [8, 16], "hidden": 0},
}


def demo_setup(seed: int) -> dict:
    """The demo's data, teacher, transfer set and teacher outputs, built by the distill stage's own pieces."""
    from distill import data as D
    from distill.building import TEACHER_FIELDS, build_teacher
    from distill.pipeline import validate_recipe
    from distill.transfer import TRANSFER_FIELDS, hard_labels, make_transfer
    from ground.recipe import load_recipe

    recipe = load_recipe(common.ROOT / "recipes" / "demo.yaml")
    sections = validate_recipe(recipe, TEACHER_FIELDS, TRANSFER_FIELDS)
    ds = D.load_data(sections["data"])
    norm = D.Normalizer.fit(ds.x_train, sections["data"]["normalize"])
    x_tr, x_val, x_ho = norm(ds.x_train), norm(ds.x_val), norm(ds.x_holdout)
    teacher = build_teacher(
        recipe["teacher"], x_tr, ds.y_train, x_val, ds.y_val, seed=seed, base_dir=D.REPO_ROOT
    )
    x_transfer = norm(make_transfer(recipe["transfer"], ds.x_train, ds.nominal, seed=seed))
    p_transfer = np.asarray(teacher.predict_proba(x_transfer), np.float32)
    y_transfer = hard_labels(x_transfer, x_tr, ds.y_train, p_transfer)
    return {
        "sections": sections,
        "ds": ds,
        "x_tr": x_tr,
        "x_val": x_val,
        "x_ho": x_ho,
        "x_transfer": x_transfer,
        "p_transfer": p_transfer,
        "y_transfer": y_transfer,
        "p_val": np.asarray(teacher.predict_proba(x_val), np.float32),
    }


def student_pair(setup: dict, spec: dict, seed: int, epochs: int) -> dict:
    """Holdout rows right for the distilled student and for its hard-label baseline, one training seed."""
    import torch

    from distill.students import build_student, count_params_macs, student_input_shape

    ds, train = setup["ds"], setup["sections"]["train"]
    shape = student_input_shape(spec, ds.n_features, ds.image_shape)
    rest = {k: v for k, v in train.items() if k not in ("epochs", "loss", "seed", "baseline")}
    right = {}
    for role, x, y, probs, val_probs, loss in (
        (
            "student",
            setup["x_transfer"],
            setup["y_transfer"],
            setup["p_transfer"],
            setup["p_val"],
            train["loss"],
        ),
        ("baseline", setup["x_tr"], ds.y_train, None, None, "hard"),
    ):
        torch.manual_seed(seed)
        model = build_student(spec, shape, ds.num_classes)
        common.train(
            model,
            x,
            y,
            probs,
            setup["x_val"],
            ds.y_val,
            input_shape=shape,
            epochs=epochs,
            loss=loss,
            seed=seed,
            val_teacher_probs=val_probs,
            **rest,
        )
        right[role] = int(
            (common.predict_proba(model, setup["x_ho"], shape).argmax(1) == ds.y_holdout).sum()
        )
    c = count_params_macs(model, shape)
    return {**right, "params": c.params, "macs": c.macs}


def parse_args(argv: list[str] | None):
    ap = common.parser("demo_student", __doc__)
    ap.add_argument(
        "--train-seeds",
        type=int,
        nargs="+",
        default=list(range(8)),
        help="student training seeds (initialisation and batch order); 0 is the demo's",
    )
    ap.add_argument(
        "--specs",
        nargs="+",
        choices=list(SPECS),
        default=list(SPECS),
        metavar="LABEL",
        help="student specs to compare: " + "; ".join(SPECS),
    )
    args = common.parse(ap, argv)
    if args.quick:
        args.train_seeds, args.specs = args.train_seeds[:1], args.specs[:2]
    return args


def compare_spec(setup: dict, label: str, train_seeds: list[int], epochs: int, n: int) -> dict:
    """One student spec over every training seed, each seed's pair printed as it ends."""
    from distill.students import validate_spec

    _, spec = validate_spec({**setup["sections"]["student"], **SPECS[label]})
    runs = []
    for s in train_seeds:
        runs.append({"seed": s, **student_pair(setup, spec, s, epochs)})
        print(
            f"{label} seed {s}: distilled {runs[-1]['student']}/{n}, hard labels {runs[-1]['baseline']}/{n}",
            flush=True,
        )
    diff = [r["student"] - r["baseline"] for r in runs]
    return {"spec": SPECS[label], "runs": runs, "rows_gained": int(sum(diff))}


def spec_row(label: str, result: dict, n: int) -> list:
    """The table row of one spec: sizes, mean accuracies, seed 0, and better/equal/worse seeds."""
    runs = result["runs"]
    diff = [r["student"] - r["baseline"] for r in runs]
    return [
        label,
        runs[0]["params"],
        runs[0]["macs"],
        f"{np.mean([r['student'] for r in runs]) / n:.2%}",
        f"{np.mean([r['baseline'] for r in runs]) / n:.2%}",
        f"{runs[0]['student']} / {runs[0]['baseline']}",
        f"{sum(d > 0 for d in diff)}/{sum(d == 0 for d in diff)}/{sum(d < 0 for d in diff)}",
        int(sum(diff)),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    rep = common.Report(
        "demo_student",
        "Distilled student vs hard-label baseline per student (digits demo)",
        common.command_line("demo_student"),
        {"train_seeds": args.train_seeds, "teacher_and_transfer_seed": args.seed},
    )
    results, rows = {}, []
    with threadpool_limits(args.threads):
        setup = demo_setup(args.seed)
        epochs = (
            2
            if args.quick
            else common.scaled(setup["sections"]["train"]["epochs"], args.epochs_scale)
        )
        rep.settings["epochs"] = epochs
        n = len(setup["ds"].y_holdout)
        for label in args.specs:
            results[label] = compare_spec(setup, label, args.train_seeds, epochs, n)
            rows.append(spec_row(label, results[label], n))
    rep.data.update({"n_holdout": n, "specs": results})
    rep.add(
        f"Holdout of {n} rows; {len(args.train_seeds)} training seeds per student. The teacher and the MUNGE "
        "transfer set are the demo's; each seed trains both models from the same initialisation.\n\n"
        + common.table(
            [
                "student",
                "weights",
                "MACs",
                "distilled (mean)",
                "hard labels (mean)",
                "seed 0 rows right: distilled / hard",
                "seeds distilled better/equal/worse",
                "rows gained, all seeds",
            ],
            rows,
        )
    )
    rep.write(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
