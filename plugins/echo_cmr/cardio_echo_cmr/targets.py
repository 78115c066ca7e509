"""What the networks learn, as config: `echo_cmr.targets`, a list of columns with their kind and level.

kind: binary (BCE, AUROC, fused by logistic regression) | continuous (standardised MSE, MAE/R²/Bland-Altman, fused by
linear regression). level: study (one value per study, repeated on its rows of the table) | view (the label of the
segments one view shows: a column per clip row, one output per view named `<name without _view>_<VIEW>`, not fused).
In the config an entry is {target: <name>, kind, level, label: <the table's column, default the name>, title, unit}
(the keys `target` and `label` are those the core's leakage check lets name an outcome column); a binary target read
from a column that `echo_cmr.thresholds` names is that value at or above its threshold (the CMR set's abnormal
flags). The CMR set (`DEFAULT`) is the paper's
and the default; every output list of the model, the selection, the report and the bundle follows
`parse(targets)`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from cardio import CardioError
from cardio_echo_cmr.settings import CMR_TARGETS

KINDS = ("binary", "continuous")
LEVELS = ("view", "study")
FIELDS = ("target", "kind", "level", "label", "title", "unit")  # the config's keys of one entry


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    level: str
    column: str = ""
    title: str = ""
    unit: str = ""

    @property
    def binary(self) -> bool:
        return self.kind == "binary"

    def task(self, view: str | None = None) -> str:
        """The study table's column and the predictions' task: the name, or `<name without _view>_<VIEW>`."""
        return f"{self.name.removesuffix('_view')}_{view}" if self.level == "view" else self.name

    @property
    def source(self) -> str:
        return self.column or self.name


def _entry(item: object, i: int) -> Target:
    where = f"echo_cmr.targets[{i}]"
    if not isinstance(item, Mapping) or not isinstance(item.get("target"), str) or not item["target"]:
        raise CardioError(f"{where} must be a mapping with a target (its name), kind and level, got {item!r}")
    name = item["target"]
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise CardioError(f"{where} ({name}): unknown field(s) {unknown}; fields are {list(FIELDS)}")
    kind, level = item.get("kind"), item.get("level", "study")
    if kind not in KINDS:
        raise CardioError(f"{where} ({name}): kind must be one of {KINDS}, got {kind!r}")
    if level not in LEVELS:
        raise CardioError(f"{where} ({name}): level must be one of {LEVELS}, got {level!r}")
    text = {k: str(item.get(k) or "") for k in ("label", "title", "unit")}
    return Target(name, kind, level, text["label"] or name, text["title"] or name, text["unit"])


def parse(items: Sequence[Mapping[str, str]]) -> tuple[Target, ...]:
    """The configured targets (`echo_cmr.targets`) in the order of the network's outputs: the binary ones, then the
    continuous ones (each in the config's order; the loss takes BCE on the first block and MSE on the second)."""
    if not isinstance(items, (list, tuple)) or not items:
        raise CardioError("echo_cmr.targets must list at least one target (target, kind, level)")
    targets = [_entry(item, i) for i, item in enumerate(items)]
    names = [t.name for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CardioError(f"echo_cmr.targets names {twice} more than once")
    return tuple(t for t in targets if t.binary) + tuple(t for t in targets if not t.binary)


def to_params(targets: tuple[Target, ...]) -> list[dict]:
    """JSON-safe (a model bundle's params)."""
    return [asdict(t) for t in targets]


def to_config(targets: tuple[Target, ...]) -> list[dict]:
    """The config entries of targets (parse's inverse)."""
    return [{"target": t.name, "kind": t.kind, "level": t.level, "label": t.column, "title": t.title, "unit": t.unit}
            for t in targets]


def from_params(items: list[dict]) -> tuple[Target, ...]:
    return tuple(Target(**item) for item in items)


def names(targets: tuple[Target, ...]) -> tuple[str, ...]:
    return tuple(t.name for t in targets)


def n_binary(targets: tuple[Target, ...]) -> int:
    return sum(t.binary for t in targets)


#: The CMR set of Sahashi et al. (the default of echo_cmr.targets and the paper profile), in the network's output
#: order.
DEFAULT = parse(CMR_TARGETS)
