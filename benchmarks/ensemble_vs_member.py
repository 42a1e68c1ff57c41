"""Does ensemble selection beat its best single member on digits? Counted over split seeds.

Issue 2 asks the demo's card to show the ensemble's holdout accuracy above its best member's.
On digits the strongest members (an RBF SVM, a shift-augmented CNN) reach 99-99.7%, one to five
errors in the 359 holdout rows, so a single split cannot tell "better" from "lucky". This
benchmark repeats the demo's data protocol (15% validation for selection, 20% holdout never
tuned on) over several split seeds (seed 0 is the demo's split) and counts holdout errors of:

- the member that is best on the holdout, picked in hindsight (optimistic by construction: the
  minimum over the library of noisy error counts);
- the member ensemble selection ranks best on validation (the "best single model" of Caruana
  et al. 2004 and Bucilua et al. 2006, chosen without the test set);
- the selected ensemble, for several selection settings (the demo's is greedy, rmse, geometric).

Two libraries: the demo recipe's ten models, and a wider one in Caruana's spirit (more SVM
kernels and C, more k for kNN, three seeds of a shift-augmented CNN trained with the project's
loop). Nothing is tuned on the holdout; every setting is reported, wins and losses alike.
"""

from __future__ import annotations

import numpy as np

from benchmarks import common

SETTINGS = {  # label -> (selection, metric, combine)
    "greedy rmse geo (demo)": ("greedy", "rmse", "geometric"),
    "greedy nll geo": ("greedy", "nll", "geometric"),
    "greedy accuracy geo": ("greedy", "accuracy", "geometric"),
    "greedy rmse mean": ("greedy", "rmse", "mean"),
    "bagged rmse geo": ("bagged", "rmse", "geometric"),
}
DEMO_SETTING = "greedy rmse geo (demo)"


def shifted(x: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by up to one pixel in x and y (wrapping), a fresh draw per call."""
    img = x.reshape(len(x), side, side)
    out = np.empty_like(img)
    moves = rng.integers(-1, 2, size=(len(x), 2))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sel = (moves[:, 0] == dy) & (moves[:, 1] == dx)
            out[sel] = np.roll(img[sel], (dy, dx), axis=(1, 2))
    return out.reshape(len(x), -1)


def cnn_member(
    name: str, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, seed: int, epochs: int
):
    """A CNN trained on hard labels with one-pixel shifts, through distill.train.fit (early stopping on validation)."""
    import torch

    from distill.members import TorchMember
    from distill.students import build_student
    from distill.train import EpochData

    side = int(round(x.shape[1] ** 0.5))
    shape = (1, side, side)
    torch.manual_seed(seed)
    model = build_student(
        {"kind": "cnn", "channels": [32, 64], "hidden": 128, "dropout": 0.25}, shape, 10
    )
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(np.asarray(y, np.int64))

    def epoch_data(epoch: int) -> EpochData:
        return EpochData(common.shaped_tensor(shifted(x, side, rng), shape), labels, None)

    res = common.train(
        model,
        x,
        y,
        None,
        xv,
        yv,
        input_shape=shape,
        epochs=epochs,
        loss="hard",
        seed=seed,
        epoch_data=epoch_data,
        lr=2e-3,
        batch_size=64,
    )
    model.load_state_dict(res.best_state)
    return TorchMember(name, model.eval(), output="logits", input_shape=shape)


def wide_extras(x, y, xv, yv, seed: int, cnn_epochs: int, quick: bool) -> dict:
    """Caruana-style breadth: the same model families at other settings, plus CNNs."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    from distill.members import SklearnMember

    ests = {
        "svm_rbf_c1": SVC(C=1.0, gamma="scale"),
        "svm_rbf_c100": SVC(C=100.0, gamma="scale"),
        "svm_poly2": SVC(C=10.0, kernel="poly", degree=2, gamma="scale"),
        "svm_poly3": SVC(C=10.0, kernel="poly", degree=3, gamma="scale"),
    }
    out = {}
    for name, svc in ests.items():
        out[name] = SklearnMember(
            name, CalibratedClassifierCV(svc, ensemble=False, cv=3).fit(x, y), 10
        )
    for k in (3, 5):
        out[f"knn{k}"] = SklearnMember(
            f"knn{k}", KNeighborsClassifier(n_neighbors=k, weights="distance").fit(x, y), 10
        )
    for s in range(1 if quick else 3):
        out[f"cnn_shift{s}"] = cnn_member(f"cnn_shift{s}", x, y, xv, yv, seed + s, cnn_epochs)
    return out


def select(
    settings: tuple[str, str, str], pv: dict, yv: np.ndarray, seed: int
) -> tuple[dict[str, float], str]:
    """The selected weights (non-zero only) and the member selection ranked best on its own."""
    from distill.selection import bagged_ensemble_selection, ensemble_selection

    kind, metric, combine = settings
    if kind == "bagged":
        r = bagged_ensemble_selection(pv, yv, metric=metric, combine=combine, seed=seed)
    else:
        r = ensemble_selection(pv, yv, metric=metric, combine=combine)
    return {n: w for n, w in r.weights.items() if w > 0}, r.best_single["name"]


def one_split(split: int, args, libraries: list[str]) -> dict:
    from distill import data as D
    from distill.ensemble import combine_probas
    from distill.library import build_library
    from ground.recipe import load_recipe

    recipe = load_recipe(common.ROOT / "recipes" / "demo.yaml")
    ds = D.load_data({**recipe["data"], "split_seed": split})
    norm = D.Normalizer.fit(ds.x_train, recipe["data"]["normalize"])
    xt, xv, xh = norm(ds.x_train), norm(ds.x_val), norm(ds.x_holdout)
    members = build_library(
        recipe["teacher"]["library"], xt, ds.y_train, seed=args.seed, num_classes=10
    )
    names = {"demo": list(members)}
    if "wide" in libraries:
        members.update(
            wide_extras(xt, ds.y_train, xv, ds.y_val, args.seed, args.cnn_epochs, args.quick)
        )
        names["wide"] = list(members)
    pv = {n: m.predict_proba(xv) for n, m in members.items()}
    ph = {n: m.predict_proba(xh) for n, m in members.items()}
    errors = {n: int((p.argmax(1) != ds.y_holdout).sum()) for n, p in ph.items()}
    out = {
        "split": split,
        "n_holdout": len(ds.y_holdout),
        "n_val": len(ds.y_val),
        "member_errors": errors,
    }
    for lib in libraries:
        lib_names = names[lib]
        best = min(lib_names, key=lambda n: (errors[n], lib_names.index(n)))
        row = {"hindsight_best": [best, errors[best]], "ensembles": {}}
        for label, setting in SETTINGS.items():
            weights, pick = select(setting, {n: pv[n] for n in lib_names}, ds.y_val, args.seed)
            pe = combine_probas(
                [ph[n] for n in weights], np.array(list(weights.values())), setting[2]
            )
            row["ensembles"][label] = {
                "errors": int((pe.argmax(1) != ds.y_holdout).sum()),
                "weights": {n: round(w, 3) for n, w in weights.items()},
            }
            if label == DEMO_SETTING:
                row["validation_pick"] = [pick, errors[pick]]
        out[lib] = row
    return out


def report_library(lib: str, splits: list[dict], rep: common.Report) -> dict:
    rows, tally = (
        [],
        {label: [0, 0, 0] for label in SETTINGS},
    )  # fewer / same / more errors than hindsight best
    totals = {"hindsight_best": 0, "validation_pick": 0, **{label: 0 for label in SETTINGS}}
    for s in splits:
        r = s[lib]
        hb, vp = r["hindsight_best"], r["validation_pick"]
        totals["hindsight_best"] += hb[1]
        totals["validation_pick"] += vp[1]
        cells = []
        for label in SETTINGS:
            e = r["ensembles"][label]["errors"]
            totals[label] += e
            tally[label][0 if e < hb[1] else 1 if e == hb[1] else 2] += 1
            cells.append(e)
        rows.append([s["split"], f"{hb[0]}: {hb[1]}", f"{vp[0]}: {vp[1]}", *cells])
    n = sum(s["n_holdout"] for s in splits)
    rows.append(
        [
            "total",
            totals["hindsight_best"],
            totals["validation_pick"],
            *(totals[k] for k in SETTINGS),
        ]
    )
    rep.add(
        f"## library: {lib}\n\nHoldout errors per split seed ({splits[0]['n_holdout']} rows each, {n} in all; "
        "split 0 is the demo's). Hindsight best = fewest holdout errors of any member; validation pick = "
        "the member selection ranks best on validation.\n\n"
        + common.table(["split", "hindsight-best member", "validation pick", *SETTINGS], rows)
        + "\nEnsemble vs hindsight-best member, splits with fewer / equal / more errors: "
        + "; ".join(f"{k} {v[0]}/{v[1]}/{v[2]}" for k, v in tally.items())
        + ".\n"
    )
    return {"totals": totals, "fewer_same_more_than_hindsight_best": tally}


def main(argv: list[str] | None = None) -> int:
    ap = common.parser("ensemble_vs_member", __doc__)
    ap.add_argument(
        "--splits",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3, 4],
        help="split seeds (0 = the demo's)",
    )
    ap.add_argument("--libraries", nargs="+", default=["demo", "wide"], choices=["demo", "wide"])
    ap.add_argument(
        "--cnn-epochs",
        type=int,
        default=40,
        help="epochs of each shift-augmented CNN (wide library)",
    )
    args = common.parse(ap, argv)
    if args.quick:
        args.splits, args.cnn_epochs = args.splits[:1], 3
    args.cnn_epochs = common.scaled(args.cnn_epochs, args.epochs_scale)
    from threadpoolctl import threadpool_limits

    rep = common.Report(
        "ensemble_vs_member",
        "Ensemble selection vs its best single member (digits, holdout errors)",
        common.command_line("ensemble_vs_member"),
        {
            "splits": args.splits,
            "libraries": args.libraries,
            "cnn_epochs": args.cnn_epochs,
            "seed": args.seed,
        },
    )
    with threadpool_limits(args.threads):
        splits = [one_split(s, args, args.libraries) for s in args.splits]
    rep.data["splits"] = splits
    for lib in args.libraries:
        rep.data[lib] = report_library(lib, splits, rep)
    rep.write(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
