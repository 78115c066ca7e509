"""A run's model bundle read back for `cardio predict` (the kernel writes it: cardio.study.bundle): its manifest
checked, its signature against the user's trusted keys (trust.py), then its weights, params and config."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from cardio import config as config_mod
from cardio.data import CardioError, ModelState
from cardio.study.bundle import FOLDS, check, read_json
from cardio_deploy import trust
from cardio_deploy.folds import HALF


def read(run_dir: Path, trusted: Sequence[tuple[object, str]] = ()) -> tuple[dict, ModelState, dict]:
    """(bundle.json, ModelState, config) of a run's bundle; anything missing, damaged or foreign is one line.

    With `trusted` keys (cardio_deploy.trust.trusted_keys), a bundle none of them signed is refused before any of its
    content is loaded; info["trust"] is the line that says what was checked (the fingerprint, and the signer)."""
    folder = Path(run_dir) / "model"
    info = check(run_dir)
    info["trust"] = trust.verify(folder, trusted)
    state = read_state(folder)
    config = config_mod.load_yaml(folder / "config.yaml")
    if not isinstance(config, dict):
        raise CardioError(f"model bundle {folder}: config.yaml must hold a mapping")
    return info, state, config


def read_folds(run_dir: Path, info: dict) -> dict[str, ModelState]:
    """The outer folds' models of a bundle that `read` checked (its manifest lists them); {} when it has none."""
    folder = Path(run_dir) / "model"
    return {name: read_state(folder / FOLDS / name) for name in info.get("folds") or []}


def read_state(folder: Path) -> ModelState:
    """The ModelState that cardio.study.bundle.write_state (a fold's: folds.write_state) wrote into `folder`
    (float16 weights back as float32)."""
    import torch
    from safetensors import SafetensorError, safe_open

    weights = folder / "weights.safetensors"
    try:
        with safe_open(str(weights), framework="pt") as f:
            halved = json.loads((f.metadata() or {}).get(HALF, "[]"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CardioError(f"{weights} is not a readable safetensors file ({' '.join(str(e).split())[:120]})") from None
    if not isinstance(halved, list) or not set(halved) <= {k for k, t in tensors.items() if t.dtype == torch.float16}:
        raise CardioError(f"{weights}: its {HALF} metadata does not name its float16 tensors")
    tensors.update({k: tensors[k].float() for k in halved})
    params = read_json(folder / "params.json")
    if not isinstance(params, dict):
        raise CardioError(f"{folder / 'params.json'} must hold a mapping")
    return ModelState(tensors, params)
