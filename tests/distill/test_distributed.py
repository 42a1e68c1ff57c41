"""DDP on CPU: two gloo processes under torchrun must match one process on the same global batch.

This file is also the worker torchrun runs (``python -m torch.distributed.run ... this_file.py OUT``):
it trains a small MLP on digits with the helpers of ``distill.distributed`` and rank 0 writes
the final parameters, the all-reduced metrics and the sharded teacher labels to OUT.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from distill import distributed as D
from distill.cache import TeacherCache
from ground.errors import UserError

GLOBAL_BATCH = 64
EPOCHS = 3
N_TRAIN = 1408  # a multiple of GLOBAL_BATCH: no rank drops or pads a row


def _data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data[:N_TRAIN] / 16.0).astype(np.float32), d.target[:N_TRAIN].astype(np.int64)


def _teacher_probs(x: np.ndarray) -> np.ndarray:
    """A fixed 'teacher' (seeded linear softmax) so sharded labelling has something real to compute."""
    w = np.random.default_rng(7).normal(size=(x.shape[1], 10)).astype(np.float32)
    z = x @ w
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


_CACHE = Path(os.environ.get("TINYSHIP_TEST_CACHE", "/nonexistent"))


def _teacher():
    """A real teacher (distill.ensemble) for the sharded labelling through the cache."""
    from sklearn.linear_model import LogisticRegression

    from distill.ensemble import Teacher
    from distill.members import SklearnMember

    x, y = _data()
    est = LogisticRegression(max_iter=200).fit(x[:500], y[:500])
    return Teacher([SklearnMember("logreg", est, 10)], np.ones(1), "mean", 10)


def train_once(ctx: D.DistContext) -> dict[str, np.ndarray] | None:
    """One training run with the distributed helpers; returns results on the main rank."""
    torch.manual_seed(0)
    x, y = _data()
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    init = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    net = D.wrap_model(model, ctx)
    opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    sums = {}
    for epoch in range(EPOCHS):
        local = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
        for idx in D.rank_batches(len(x), GLOBAL_BATCH, ctx, seed=0, epoch=epoch):
            opt.zero_grad()
            logits = net(xt[idx])
            loss = torch.nn.functional.cross_entropy(logits, yt[idx])
            loss.backward()
            opt.step()
            local["loss_sum"] += loss.item() * len(idx)
            local["correct"] += float((logits.argmax(1) == yt[idx]).sum())
            local["count"] += len(idx)
        sums = D.all_reduce_sums(local, ctx)
    labels = D.sharded_predict(_teacher_probs, x, ctx)
    cached = np.array(D.cached_teacher_outputs(_teacher(), x, TeacherCache(_CACHE), ctx))
    again = TeacherCache(_CACHE)  # second call: a cache hit on rank 0, broadcast, nobody labels
    hit = np.array(D.cached_teacher_outputs(_teacher(), x, again, ctx))
    np.testing.assert_array_equal(hit, cached)
    if again.misses:
        raise RuntimeError(
            f"rank {ctx.rank}: the second call relabelled instead of reading the cache"
        )
    if not ctx.is_main:
        return None
    params = torch.nn.utils.parameters_to_vector(D.unwrap_model(net).parameters()).detach().numpy()
    return {
        "params": params,
        "init": init.numpy(),
        "labels": labels,
        "cached": cached,
        "metrics": np.array(
            [sums["loss_sum"] / sums["count"], sums["correct"] / sums["count"], sums["count"]]
        ),
    }


def fit_once(ctx: D.DistContext, workdir: Path) -> dict[str, np.ndarray] | None:
    """The same comparison through the project's own loop (distill.train.fit) with D.train_context."""
    from distill.train import EpochData, accuracy_score, fit, train_config

    x, y = _data()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    teacher = torch.log(torch.from_numpy(_teacher_probs(x)))
    data = EpochData(torch.from_numpy(x), torch.from_numpy(y), teacher)
    cfg = train_config(
        {
            "epochs": EPOCHS,
            "batch_size": GLOBAL_BATCH,
            "loss": "hinton",
            "lr": 1e-2,
            "patience": EPOCHS,
            "baseline": False,
        }
    )
    yv = torch.from_numpy(y[:200])
    res = fit(
        model,
        lambda epoch: data,
        lambda lg: accuracy_score(lg, yv),
        torch.from_numpy(x[:200]),
        cfg,
        checkpoint=workdir / "ck.pt",
        fingerprint="ddp-test",
        ctx=D.train_context(ctx),
        progress=False,
    )
    if not ctx.is_main:
        return None
    final = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    return {"params": final, "loss": np.array([h["train_loss"] for h in res.history])}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_label_shards_cover_rows_once():
    for n in (0, 1, 7, 10, 1001):
        for world in (1, 2, 3, 8):
            rows = np.concatenate([np.arange(n)[D.label_shard(n, r, world)] for r in range(world)])
            assert rows.tolist() == list(range(n))
            sizes = [len(range(n)[D.label_shard(n, r, world)]) for r in range(world)]
            assert max(sizes) - min(sizes) <= 1


def test_rank_batches_union_is_the_one_process_batch():
    one = D.rank_batches(200, 40, D.DistContext(), seed=3, epoch=1)
    two = [
        D.rank_batches(
            200, 40, D.DistContext(rank=r, world_size=2, backend="gloo"), seed=3, epoch=1
        )
        for r in (0, 1)
    ]
    assert len(one) == len(two[0]) == len(two[1]) == 5
    for k, batch in enumerate(one):
        assert sorted(torch.cat([two[0][k], two[1][k]]).tolist()) == sorted(batch.tolist())
    # a new epoch draws a new order
    assert D.rank_batches(200, 40, D.DistContext(), seed=3, epoch=2)[0].tolist() != one[0].tolist()


def test_global_batch_must_split_evenly():
    with pytest.raises(
        UserError,
        match=r"train.batch_size=63 must be a positive multiple of the number of processes \(2\)",
    ):
        D.check_global_batch(63, D.DistContext(rank=0, world_size=2, backend="gloo"))


def test_setup_without_torchrun_is_one_process():
    ctx = D.setup(env={})
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RANK": "x", "WORLD_SIZE": "2"}, r"RANK='x' must be an integer"),
        (
            {"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"},
            r"RANK=2 and WORLD_SIZE=2 are inconsistent",
        ),
        ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "1"}, r"MASTER_ADDR is not set"),
    ],
)
def test_setup_rejects_bad_environment(env, message):
    with pytest.raises(UserError, match=message):
        D.setup(env=env)


def test_two_gloo_processes_match_one_process(tmp_path):
    """torchrun with 2 CPU processes (gloo) vs 1 process: same weights, order and global batch."""
    out = tmp_path / "ddp.npz"
    env = {k: v for k, v in os.environ.items() if k not in D.ENV_VARS}
    env.update(
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        TINYSHIP_TEST_CACHE=str(tmp_path / "cache"),
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        __file__,
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out, allow_pickle=False) as z:
        ddp = {k: z[k] for k in z.files}
    torch.set_num_threads(1)
    global _CACHE
    _CACHE = tmp_path / "cache-one"
    one = train_once(D.DistContext())
    moved = np.abs(one["params"] - one["init"]).max()
    assert moved > 0.05  # training really moved the weights, so the tolerance below means something
    np.testing.assert_allclose(ddp["init"], one["init"], atol=0)
    np.testing.assert_allclose(ddp["params"], one["params"], atol=2e-4)
    np.testing.assert_allclose(ddp["metrics"], one["metrics"], rtol=1e-4)
    assert ddp["metrics"][2] == N_TRAIN  # metrics were summed over both ranks
    np.testing.assert_allclose(ddp["labels"], _teacher_probs(_data()[0]), atol=1e-6)
    # sharded labelling through the teacher cache: gathered on rank 0, stored once, equal to one process
    np.testing.assert_allclose(ddp["cached"], one["cached"], atol=1e-6)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_fit_under_torchrun_matches_one_process(tmp_path):
    """distill.train.fit with D.train_context: 2 gloo processes vs 1, same weights, order and global batch."""
    out = tmp_path / "fit.npz"
    env = {k: v for k, v in os.environ.items() if k not in D.ENV_VARS}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        __file__,
        str(out),
        "fit",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out, allow_pickle=False) as z:
        ddp = {k: z[k] for k in z.files}
    torch.set_num_threads(1)
    (tmp_path / "one").mkdir()
    one = fit_once(D.DistContext(), tmp_path / "one")
    torch.use_deterministic_algorithms(False)
    np.testing.assert_allclose(ddp["params"], one["params"], atol=2e-4)
    np.testing.assert_allclose(
        ddp["loss"], one["loss"], rtol=1e-4
    )  # epoch losses all-reduced over both ranks


CLI_RECIPE = """
name: ddp-cli
data: {name: digits, normalize: scalar}
teacher: {library: [knn, logreg], combine: mean, selection: greedy}
transfer: {method: munge, size_multiplier: 3}
student: {kind: mlp, hidden: [32]}
train: {epochs: 2, batch_size: 128, seed: 0, baseline: false}
"""


def test_torchrun_distill_cli_matches_one_process(tmp_path):
    """``torchrun --nproc_per_node=2 -m distill`` end to end: one card, written by rank 0, equal metrics."""
    import json

    recipe = tmp_path / "r.yaml"
    recipe.write_text(CLI_RECIPE)
    env = {k: v for k, v in os.environ.items() if k not in D.ENV_VARS}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    common = ["-m", "distill", "--recipe", str(recipe), "--quiet"]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("distill two: holdout") == 1  # only rank 0 prints
    one = subprocess.run(
        [sys.executable, *common, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    cards = {
        k: json.loads((tmp_path / k / "student" / "card.json").read_text()) for k in ("one", "two")
    }
    assert cards["two"]["lineage"]["processes"]["world_size"] == 2
    assert cards["one"]["lineage"]["processes"]["world_size"] == 1
    h1, h2 = (cards[k]["training"]["student"]["history"] for k in ("one", "two"))
    np.testing.assert_allclose(
        [e["train_loss"] for e in h2], [e["train_loss"] for e in h1], rtol=1e-4
    )
    s1, s2 = (cards[k]["metrics"]["holdout"]["student"] for k in ("one", "two"))
    assert (
        abs(s1["accuracy"] - s2["accuracy"]) <= 1 / 359 + 1e-9 and abs(s1["nll"] - s2["nll"]) < 1e-3
    )
    left = sorted(p.name for p in (tmp_path / "two").iterdir() if p.name not in {".work", ".lock"})
    assert left == [
        "student"
    ]  # no .partial left (.lock is the run dir's writer lock, kept by design)


def _worker(out: str, what: str) -> None:
    from ground import rundir

    with D.session("gloo") as ctx:
        torch.set_num_threads(1)
        res = (
            train_once(ctx)
            if what == "manual"
            else fit_once(ctx, Path(out).parent / f"rank{ctx.rank}")
        )
        if ctx.is_main:
            rundir.atomic_write_npz(out, **res)


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "manual")
