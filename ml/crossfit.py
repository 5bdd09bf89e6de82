"""Cross-fitting: the model to serve and K fold models, trained side by side, with self-training.

Member 0 trains on every label and is the one served; member j >= 1 trains without the labels
of fold j - 1 and predicts them, so every labeled item gets out-of-fold probabilities (for the
honest accuracy estimate, calibration and the label-error review). Folds are a stable hash of
each item's key: an item stays in its fold as labels arrive.

Each member also learns from its own pseudo-labels: the unlabeled items it was confident about
in the previous round (``CrossFitState``, chosen by ``ml.pseudo_labels.next_state``), which lets
a few dozen labels go much further (self-training). Because a member only ever sees its own
earlier predictions, a fold model never learns, even indirectly, from the labels it is held out
on, and the out-of-fold estimate stays honest. The members train in parallel threads with one
torch thread each, which on a small CPU gets more done than one model using every core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.models.cnn import build_model, to_tensor
from ml.models.files import write_atomically
from ml.models.predict import predict_proba, predict_proba_features
from ml.training import (
    CNN_CONFIG,
    HEAD_CONFIG,
    check_labels,
    fit,
    labels_as_targets,
    schedule_steps,
    standardized_head,
)

#: Fold models beside the served one.
FOLDS = 5
#: Members train at once on the CPU, as many as the process has torch threads (at most this many),
#: each in its own thread with one torch thread: small models use threads poorly, and one model
#: spread over every core slows to a crawl when anything else runs beside it (measured on 2 cores
#: with a second process busy: 40 s for six models one after the other, 8 s side by side).
MAX_PARALLEL_MEMBERS = 16


def stable_folds(keys: np.ndarray, folds: int, *, salt: int = 0) -> np.ndarray:
    """The fold of each item: a fixed hash (splitmix64) of its key, so a key never moves.

    Hand-written on purpose: scikit-learn's ``KFold`` / ``StratifiedKFold`` assign folds from
    positions in the array at hand, so each new label would reshuffle every item's fold, and a
    fold model's pseudo-labels (``CrossFitState``) would no longer come from a model that never
    saw the item's label. Folds are not stratified; at a few dozen labels and up, each fold
    still holds most classes, and a fold that cannot be trained is skipped.

    Parameters
    ----------
    keys : (N,) int
        Item keys (database ids, or positions).
    folds : int
        Number of folds K.
    salt : int
        Another salt gives another, unrelated hash (the audit set uses 1).

    Returns
    -------
    (N,) int64
        Fold in [0, K) of each key.
    """
    z = np.asarray(keys, dtype=np.int64).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15 + salt)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(folds)).astype(np.int64)


@dataclass
class PseudoLabels:
    """One member's pseudo-labels: item ``keys`` (P,) int64 and their ``classes`` (P,) int64."""

    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class CrossFitState:
    """What a round hands on: each member's pseudo-labels for the next round (index 0: the served
    model), and the labeled items' out-of-fold probabilities, (N,) ``oof_keys`` and (N, C)
    ``oof_probs``, for the label-error review."""

    folds: int = FOLDS
    members: list[PseudoLabels] = field(default_factory=list)
    oof_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    oof_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def save(self, path: Path) -> None:
        """Write the state to ``path`` (an ``.npz``), atomically."""
        arrays: dict[str, np.ndarray] = {
            "folds": np.array(self.folds),
            "oof_keys": self.oof_keys,
            "oof_probs": self.oof_probs,
        }
        for j, member in enumerate(self.members):
            arrays[f"keys_{j}"], arrays[f"classes_{j}"] = member.keys, member.classes
        # (numpy's stub reads **arrays as maybe its allow_pickle flag)
        write_atomically(Path(path), lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> CrossFitState:
        with np.load(Path(path)) as z:
            folds = int(z["folds"])
            members = [
                PseudoLabels(z[f"keys_{j}"].astype(np.int64), z[f"classes_{j}"].astype(np.int64))
                for j in range(folds + 1)
                if f"keys_{j}" in z
            ]
            return cls(folds, members, z["oof_keys"].astype(np.int64), z["oof_probs"].astype(np.float32))


@dataclass
class _Member:
    """One member's training: a fresh model (None: no fold model possible), its labeled rows, and
    its pseudo-labeled pool rows and classes."""

    model: nn.Module | None
    rows: np.ndarray
    pseudo_rows: np.ndarray
    pseudo_classes: np.ndarray
    seed: int


@dataclass
class CrossFit:
    """``model``: the served member (eval mode; None with ``serve=False``); ``oof_probs`` (N, C)
    each labeled item's probabilities from the fold model that never saw it (NaN rows where no
    fold model could be trained); ``fold_models`` the K others; ``folds`` (N,) each labeled item's
    fold; ``n_pseudo`` pseudo-labels each member trained with; ``steps`` each member's schedule."""

    model: nn.Module | None
    oof_probs: np.ndarray
    fold_models: list[nn.Module | None]
    folds: np.ndarray
    n_pseudo: list[int]
    steps: int


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when this host has it, else the CPU; or a torch device name (``cpu``, ``cuda:1``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _pseudo_rows(previous: PseudoLabels | None, pool_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (rows into the pool, classes) of a member's earlier pseudo-labels still unlabeled now."""
    if previous is None or len(previous.keys) == 0 or len(pool_keys) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(pool_keys, kind="stable")
    sorted_keys = pool_keys[order]
    at = np.clip(np.searchsorted(sorted_keys, previous.keys), 0, len(sorted_keys) - 1)
    found = sorted_keys[at] == previous.keys
    return order[at[found]].astype(np.int64), previous.classes[found].astype(np.int64)


def cross_fit(
    inputs: np.ndarray,
    labels: np.ndarray,
    keys: np.ndarray,
    n_classes: int,
    *,
    pool_inputs: np.ndarray | None = None,
    pool_keys: np.ndarray | None = None,
    previous: CrossFitState | None = None,
    features: bool = False,
    reference: np.ndarray | None = None,
    folds: int = FOLDS,
    seed: int = 0,
    allow_flips: bool = False,
    device: torch.device | None = None,
    progress: Callable[[float], None] | None = None,
    serve: bool = True,
) -> CrossFit:
    """Train the served member on every label and ``folds`` fold members, each without its fold.

    Each member also trains on its own pseudo-labels from ``previous`` among the pool items.
    Deterministic given ``seed``; every member has the same schedule (``schedule_steps``).

    Parameters
    ----------
    inputs : (N, S, S, 3) uint8 or, with ``features``, (N, D) float32
        Images (a CNN per member) or embeddings (a head per member).
    labels : (N,) int or (N, C) 0/1
    keys : (N,) int
        Item keys: they fix the folds (``stable_folds``).
    n_classes : int
    pool_inputs : (M, ...) like ``inputs``, optional
    pool_keys : (M,) int, optional
    previous : CrossFitState, optional
    features : bool
    reference : (R, D) float32, optional
        Standardisation statistics of the heads.
    folds : int
    seed : int
    allow_flips : bool
    device : torch.device, optional
    progress : callable, optional
    serve : bool
        False: only the fold models train (out-of-fold probabilities alone; ``model`` is None).

    Returns
    -------
    CrossFit
        ``oof_probs`` (N, C) (NaN rows where no fold model could train), ``folds`` (N,), ...
    """
    labels, multi_label = labels_as_targets(labels, n_classes)
    check_labels(labels, n_classes)
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) != len(labels) or len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} inputs, {len(labels)} labels and {len(keys)} keys")
    device = device or torch.device("cpu")
    report = progress or (lambda _fraction: None)
    n = len(labels)
    fold_of = stable_folds(keys, folds)
    pool_keys = np.zeros(0, dtype=np.int64) if pool_keys is None else np.asarray(pool_keys, dtype=np.int64)
    has_pool = pool_inputs is not None and len(pool_keys) > 0 and not multi_label
    base = HEAD_CONFIG if features else CNN_CONFIG
    config = replace(base, multi_label=multi_label, allow_flips=allow_flips and base.augment)

    def tensor(arrays: np.ndarray) -> torch.Tensor:
        if features:
            return torch.from_numpy(np.asarray(arrays, dtype=np.float32).copy()).to(device)
        return to_tensor(arrays).to(device)

    x = tensor(inputs)
    y = torch.from_numpy(labels.copy()).to(device)
    steps = schedule_steps(n, head=features)

    def build() -> nn.Module:
        if features:
            return standardized_head(inputs, n_classes, reference=reference, multi_label=multi_label).to(device)
        return build_model(n_classes, input_size=inputs.shape[1], multi_label=multi_label).to(device)

    member_state = previous.members if previous is not None and previous.folds == folds else []
    members: list[_Member] = []
    none = np.zeros(0, dtype=np.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for j in range(folds + 1):
            rows = np.arange(n) if j == 0 else np.flatnonzero(fold_of != j - 1)
            if (j == 0 and not serve) or (j > 0 and (len(rows) == 0 or len(rows) == n)):
                members.append(_Member(None, rows, none, none, 0))
                continue
            prior = member_state[j] if j < len(member_state) and has_pool else None
            p_rows, p_classes = _pseudo_rows(prior, pool_keys)
            members.append(_Member(build(), rows, p_rows, p_classes, seed * 7919 + j))
    # Only the pool items some member has a pseudo-label for become tensors (a large pool would not fit).
    used = np.unique(np.concatenate([m.pseudo_rows for m in members]))
    x_pool = tensor(np.asarray(pool_inputs)[used]) if has_pool and len(used) else None
    for member in members:
        member.pseudo_rows = np.searchsorted(used, member.pseudo_rows).astype(np.int64)

    live = [member for member in members if member.model is not None]
    done = np.zeros(len(live))

    def run(i: int, on_progress: Callable[[float], None]) -> nn.Module:
        def member_report(fraction: float) -> None:
            done[i] = fraction
            on_progress(float(done.mean()))

        member = live[i]
        assert member.model is not None
        return fit(
            member.model,
            x,
            y,
            member.rows,
            steps=steps,
            config=config,
            seed=member.seed,
            pool_x=x_pool,
            pseudo_rows=member.pseudo_rows,
            pseudo_classes=member.pseudo_classes,
            progress=member_report,
        )

    parallel = min(torch.get_num_threads(), len(live), MAX_PARALLEL_MEMBERS)
    if device.type == "cpu" and parallel > 1:
        # Progress is reported from this thread only: the callback may write to a database.
        with torch_threads(1), ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = [pool.submit(run, i, lambda _fraction: None) for i in range(len(live))]
            while wait(futures, timeout=0.5).not_done:
                report(float(done.mean()))
            for future in futures:
                future.result()
        report(1.0)
    else:
        for i in range(len(live)):
            run(i, report)

    oof = np.full((n, n_classes), np.nan, dtype=np.float32)
    predict = predict_proba_features if features else predict_proba
    for j, member in enumerate(members[1:]):
        held = np.flatnonzero(fold_of == j)
        if member.model is not None and len(held):
            oof[held] = predict(member.model.cpu(), np.asarray(inputs)[held]).mean(axis=2)
    return CrossFit(
        model=members[0].model.cpu() if members[0].model is not None else None,
        oof_probs=oof,
        fold_models=[member.model for member in members[1:]],
        folds=fold_of,
        n_pseudo=[len(member.pseudo_rows) for member in members],
        steps=steps,
    )


def fold_temperature_into(model: nn.Module, temperature: float) -> nn.Module:
    """Divide the last linear layer's weights and bias by ``temperature``, in place.

    The model then gives calibrated probabilities everywhere it is used (pre-labels, scoring,
    the download). Returns ``model``.
    """
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        linear.weight.div_(temperature)
        if linear.bias is not None:
            linear.bias.div_(temperature)
    return model


def oof_complete(oof_probs: np.ndarray) -> np.ndarray:
    """Items that got an out-of-fold prediction.

    Parameters
    ----------
    oof_probs : (N, C) float

    Returns
    -------
    (N,) bool
    """
    return ~np.isnan(np.asarray(oof_probs)).any(axis=1)
