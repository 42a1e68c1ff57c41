"""The recipe's ``train`` section: its fields, their defaults and bounds.

Apart from the loop (distill/train.py) so the recipe reference and every caller that only
validates a section read it without the loop's machinery.
"""

from __future__ import annotations

from ground.recipe import Field, validate

from .losses import LOSSES

# both validation scores are [top-1, -loss]; "loss" compares them loss first
SELECT_RULES = ("top1", "loss")

TRAIN_FIELDS: dict[str, Field] = {
    "epochs": Field(
        int, 30, min=1, max=10000, doc="maximum epochs (early stopping may end sooner)"
    ),
    "batch_size": Field(int, 64, min=1, doc="global batch (split across ranks under torchrun)"),
    "optimizer": Field(str, "adamw", choices=("adamw", "sgd"), doc="torch.optim optimizer"),
    "lr": Field(float, 3e-3, min=1e-7, max=10.0, doc="peak learning rate"),
    "weight_decay": Field(
        float, 1e-4, min=0.0, max=1.0, doc="decoupled (AdamW) or L2 (SGD) weight decay"
    ),
    "momentum": Field(float, 0.9, min=0.0, max=0.999, doc="SGD only"),
    "schedule": Field(
        str, "cosine", choices=("cosine", "step", "none"), doc="learning-rate schedule per epoch"
    ),
    "step_size": Field(int, 10, min=1, doc="step schedule: epochs between decays"),
    "gamma": Field(float, 0.5, min=0.0, max=1.0, doc="step schedule: decay factor"),
    "patience": Field(
        int, 10, min=1, doc="epochs without a better validation score before stopping"
    ),
    "select": Field(
        str,
        "top1",
        choices=SELECT_RULES,
        doc="which validation epoch is kept (and early stopping's 'better'): top1 = agreement "
        "with the teacher (accuracy for the baseline), ties to the lower loss; loss = the lower "
        "loss alone (KL to the teacher, NLL for the baseline), for a validation split so small "
        "or easy that top-1 stops moving",
    ),
    "loss": Field(
        str,
        "hinton",
        choices=tuple(LOSSES),
        doc="hinton: soft targets at T; logits: MSE on logits; probs: Bucilua squared error; hard: labels",
    ),
    "temperature": Field(
        float, 4.0, min=0.05, max=100.0, doc="Hinton 2015 §2 soft-target temperature T"
    ),
    "alpha": Field(
        float, 0.9, min=0.0, max=1.0, doc="weight of the soft term; 1 - alpha on the hard labels"
    ),
    "seed": Field(int, 0, min=0, doc="seeds teacher library, transfer set, init and batch order"),
    "baseline": Field(bool, True, doc="also train the same student on hard labels only"),
    "channels_last": Field(
        bool,
        False,
        doc="train conv students on NHWC tensors (torch.channels_last): a small DS-CNN's CPU "
        "step is ~1.5x faster under oneDNN; float sums differ, so figures move as with another "
        "thread count. The trained student is exported as usual (NCHW in, same graph)",
    ),
}


def train_config(section: dict | None) -> dict:
    return validate("train", section, TRAIN_FIELDS)
