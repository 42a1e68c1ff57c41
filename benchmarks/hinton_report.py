"""The markdown of Hinton 2015's MNIST run, rendered from its JSON result file alone: rule H40 and
its verdict per seed first, the figures reported beside it, then the §3, omitted-3 and §6 tables.

``python -m benchmarks.hinton_report [hinton_mnist.json]`` renders it again from a result file.
"""

from __future__ import annotations

import numpy as np

from benchmarks import common, result_record
from benchmarks.hinton_rule import PAPER, RULE, evaluate_rule, gap_recovery


def arch(hidden: list[int]) -> str:
    return "-".join(map(str, [784, *hidden, 10]))


def mean_sd(v: list[float]) -> str:
    return f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


def checked_rule(res: dict, seeds: list[int]) -> dict:
    """Rule H40 recomputed from the per-seed counts in the file; a stored verdict that disagrees
    with its own figures is an error, not a line to print."""
    rule = evaluate_rule(
        [r["hard_test"] for r in res["per_seed"]],
        [r["distilled_test"] for r in res["per_seed"]],
        seeds,
    )
    if rule != res["rule"]:
        raise ValueError(
            f"the stored verdict {res['rule'].get('verdict')!r} does not follow from the per-seed "
            f"figures in the file (they give {rule['verdict']!r}); rerun the benchmark"
        )
    return rule


def verdict_lines(rec: dict) -> str:
    """The rule as fixed, the verdict and each seed's, then what is reported beside it."""
    res, st = rec["results"], rec["settings"]
    rule = checked_rule(res, st["seeds"])
    rows = [
        [
            r["seed"],
            r["hard_test"],
            r["distilled_test"],
            "yes" if r["distilled_at_most"] else "**no**",
            r["fewer"],
            "yes" if r["fewer_at_least"] else "**no**",
            f"**{r['verdict']}**",
        ]
        for r in rule["per_seed"]
    ]
    t = res["teacher"]["test_errors"]
    shares = [gap_recovery(r["hard_test"], r["distilled_test"], t) for r in res["per_seed"]]
    shown = ", ".join(
        f"seed {r['seed']} {'n/a (teacher not better)' if v is None else f'{v:.2f}'}"
        for r, v in zip(res["per_seed"], shares)
    )
    return (
        RULE.format(
            max_distilled=rule["max_distilled"],
            min_fewer=rule["min_fewer"],
            T=st["T"],
            alpha=st["alpha"],
        )
        + f"\n\n**Verdict (rule H40): {rule['verdict']}** ("
        + ", ".join(f"seed {r['seed']} {r['verdict']}" for r in rule["per_seed"])
        + ").\n\n"
        + common.table(
            [
                "seed",
                "hard labels: test errors",
                "distilled: test errors",
                f"distilled <= {rule['max_distilled']}",
                "hard - distilled",
                f">= {rule['min_fewer']} fewer",
                "seed verdict",
            ],
            rows,
        )
        + f"\nReported beside the verdict, not part of it: the teacher makes {t} test errors (the "
        f"paper's: {PAPER['teacher']}); the share of the teacher-hard gap the distilled student "
        f"recovers, (hard - distilled) / (hard - teacher): {shown} (the paper: "
        f"{PAPER['gap_recovery']:.2f}).\n"
    )


def teacher_section(rec: dict) -> str:
    """§3 per seed beside the paper, then how the teacher was trained."""
    res, st = rec["results"], rec["settings"]
    t, tc, to, sc = res["teacher"], st["teacher"], st["teacher_opt"], st["student"]
    per = res["per_seed"]
    rows = [[r["seed"], t["test_errors"], r["hard_test"], r["distilled_test"]] for r in per]
    rows.append(
        [
            "mean ± sd",
            "",
            mean_sd([r["hard_test"] for r in per]),
            mean_sd([r["distilled_test"] for r in per]),
        ]
    )
    rows.append(["paper", PAPER["teacher"], PAPER["student_hard"], PAPER["student_distilled"]])
    losses = t["train_loss_per_epoch"]
    return (
        f"## §3 distillation: test errors (of {st['n_test']})\n\n"
        + common.table(
            [
                "seed",
                f"teacher {arch(tc['hidden'])}",
                f"student {arch(sc['hidden'])}, hard labels",
                f"student {arch(sc['hidden'])}, distilled T={st['T']:g}",
            ],
            rows,
        )
        + result_record.stamp(rec, st["seeds"])
        + f"\nTeacher: {len(losses)} epochs of {tc['epochs']} on all {st['n_train']} training rows "
        f"(seed {st['teacher_seed']}; no rows held out, nothing chosen on validation, last epoch), "
        f"SGD with Nesterov momentum {to['momentum']}, lr {to['lr']} decayed x{to['lr_end_fraction']} "
        f"over the run (per epoch), batch {to['batch_size']}; input dropout {tc['input_dropout']}, "
        f"hidden dropout {tc['dropout']}, max-norm {tc['max_norm']} on {tc['max_norm_on']}, "
        f"±{tc['jitter_px']} px jitter (a fresh shift per image and epoch); training loss "
        f"{losses[0]:.4f} in epoch 1, {losses[-1]:.4f} in the last; {t['train_errors']} errors on "
        f"its unjittered training rows. Students: {sc['epochs']} epochs, last epoch, no dropout, "
        f"{st['student_opt']['optimizer']} lr {st['student_opt']['lr']} {st['student_opt']['schedule']}, "
        f"batch {st['student_opt']['batch_size']}; seed s gives the hard-label and the distilled "
        f"student the same initial weights and batch order; alpha={st['alpha']}.\n"
    )


def omit3_section(rec: dict) -> str:
    """§3 omitted-3 of the first seed, beside the paper's figures."""
    o, seed0 = rec["results"]["omit3"], rec["settings"]["seeds"][0]
    n3, b_val, paper_b = o["threes_in_test"], o["bias_chosen"], o["bias_paper"]
    rows = [
        ["as trained", o["errors"], f"{o['threes_errors']} of {n3}", PAPER["omit3_errors"],
         f"{PAPER['omit3_threes_errors']} of 1010"],
        [f"bias of class 3 +{b_val:g}, chosen on {o['bias_rows']} held-out training rows",
         o["bias_chosen_errors"], f"{o['bias_chosen_threes_errors']} of {n3}", "-", "-"],
        [f"bias of class 3 +{paper_b} (the paper's value, chosen on the TEST set)",
         o["bias_paper_errors"], f"{o['bias_paper_threes_errors']} of {n3}",
         PAPER["omit3_bias_errors"], "-"],
    ]  # fmt: skip
    return (
        f"## §3 omitted-3 (seed {seed0}: transfer set of {o['transfer_rows_without_3']} training rows "
        f"without any 3; {n3} threes in the test set)\n\n"
        + common.table(
            [
                "student distilled without 3s",
                "ours: test errors",
                "ours: errors on 3s",
                "paper: errors",
                "paper: errors on 3s",
            ],
            rows,
        )  # fmt: skip
        + result_record.stamp(rec, [seed0])
        + f"\nThe {o['bias_rows']} bias rows are training rows the omitted-3 student never saw (the "
        "teacher did); the bias is the grid value 0, 0.25, ..., 15 with the fewest errors on them. "
        "The paper chose its +3.5 on the test set, so that row is not a held-out figure.\n"
    )


def scarce_section(rec: dict) -> str:
    """§6: hard labels vs soft targets on 3% of the rows, per seed and mean ± sd."""
    sc, st = rec["results"]["scarce"], rec["settings"]
    rows = [
        [r["seed"], r["hard_test"], r["hard_best_epoch"], r["soft_test"], r["hard_test"] - r["soft_test"]]
        for r in sc
    ]  # fmt: skip
    rows.append(
        [
            "mean ± sd",
            mean_sd([r["hard_test"] for r in sc]),
            "",
            mean_sd([r["soft_test"] for r in sc]),
            mean_sd([r["hard_test"] - r["soft_test"] for r in sc]),
        ]
    )
    return (
        f"## §6 soft targets as a regularizer: student {arch(st['student']['hidden'])} on "
        f"{sc[0]['rows']} rows ({st['scarce']['fraction']:.0%} of the {st['n_train']} training rows, "
        "a fresh draw per seed)\n\n"
        + common.table(
            [
                "seed",
                "hard labels: test errors",
                "hard: epoch kept (best on validation)",
                f"soft targets T={st['T']:g}: test errors",
                "gap hard - soft",
            ],
            rows,
        )  # fmt: skip
        + result_record.stamp(rec, st["seeds"])
        + f"\n{st['scarce']['epochs']} epochs each. The hard-label student keeps its best epoch on "
        f"{sc[0]['val_rows']} validation rows drawn from the training rows outside its 3% (the "
        "paper's baseline was early-stopped); the soft-target student keeps its last (alpha as in "
        "§3), its soft targets from the §3 teacher. The paper's §6 figures are for speech, not "
        "MNIST, so only ours are shown.\n"
    )


def render(rec: dict) -> str:
    """The whole markdown from a result file: verdict first, then provenance, then the tables."""
    st = rec["settings"]
    return "\n".join(
        [
            "# Hinton et al. 2015 on MNIST (§3, §6)\n",
            verdict_lines(rec),
            result_record.provenance(rec),
            "- settings: " + ", ".join(f"{k}={v}" for k, v in st.items()) + "\n",
            teacher_section(rec),
            omit3_section(rec),
            scarce_section(rec),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    return result_record.rerender("hinton_mnist", "hinton_report", render, argv)


if __name__ == "__main__":
    from ground.cli import run_cli

    raise SystemExit(run_cli(main))
