"""A run's model bundle (<run>/model/): the final model as safetensors + JSON, checked against its manifest (the
deploy service reads it back for `cardio predict`: cardio_deploy.bundle).

Files: `weights.safetensors` (every array of the plugin's ModelState), `params.json` (its JSON
params), `config.yaml` (the run's resolved config) and `bundle.json` (format, plugin, versions, the
cohort it was fitted on, a manifest of the other files' sha256: any edit is refused), and
`signature.json` when the author has a signing key (cardio.study.signing: the manifest shows a bundle is intact,
the signature who made it). Nothing is pickled, so a foreign or damaged bundle can be refused without running
any of its content. With `fold_models: true` the bundle may also carry each outer fold's model,
`folds/<fold>/weights.safetensors` and `folds/<fold>/params.json`, in the same manifest (`cardio predict --ensemble
folds`): the deploy service keeps them and adds them once every fit and the final model are done (cardio_deploy.folds).

Fitted scikit-learn objects travel inside the weights as uint8 arrays in skops' format: the scikit-learn service's
(cardio_sklearn), which only a plugin that keeps them in its bundle requires (ecg_transfer).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from cardio import config as config_mod
from cardio import plugins
from cardio.data import CardioError, ModelState
from cardio.data.cache import atomic_path
from cardio.data.pseudonyms import pseudonymize
from cardio.data.spreadsheet import csv_text
from cardio.study import signing

FORMAT = "cardio-bundle/1"
FILES = ("bundle.json", "weights.safetensors", "params.json", "config.yaml")


def sha256(path: Path) -> str:
    """The hex sha256 of a file, read in blocks (a bundle's manifest lists each of its files so)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def as_tensors(state: ModelState, plugin: str) -> dict:
    import torch

    out = {}
    for name, value in state.tensors.items():
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            t = torch.from_numpy(np.ascontiguousarray(value))
        else:
            raise CardioError(f"plugin {plugin!r}: cardio_export_model tensor {name!r} is {type(value).__name__}; "
                              "give tensors or numeric arrays (anything else belongs in params)")
        out[str(name)] = t.contiguous().clone()  # safetensors refuses tensors that share memory
    return out


def write_state(folder: Path, state: ModelState, plugin: str, metadata: dict[str, str] | None = None) -> None:
    """A ModelState as `weights.safetensors` (with `metadata`: the deploy service's fold models name their float16
    tensors there) and `params.json` in `folder` (made if missing)."""
    from safetensors.torch import save_file

    try:
        params = json.dumps(state.params, indent=1, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise CardioError(f"plugin {plugin!r}: cardio_export_model params are not JSON ({e})") from None
    folder.mkdir(parents=True, exist_ok=True)
    save_file(as_tensors(state, plugin), str(folder / "weights.safetensors"), metadata=metadata)
    (folder / "params.json").write_text(params)
    # safetensors creates its file owner-only; a bundle is shared like the run's other files (the umask decides)
    os.chmod(folder / "weights.safetensors", (folder / "params.json").stat().st_mode & 0o777)


def write(run_dir: Path, state: ModelState, config: dict, meta: dict) -> Path:
    """Write <run_dir>/model/ (replacing a bundle of a resumed run only once the new one is complete), signed with
    the user's key where one is configured (cardio.study.signing)."""
    key = signing.signing_key()  # a configured key that cannot be read stops here, before anything is written
    tmp = Path(run_dir) / f".model-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    write_state(tmp, state, meta["plugin"])
    (tmp / "config.yaml").write_text(config_mod.dump(config))
    info = {"format": FORMAT, **meta, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "tensors": sorted(state.tensors), "weights_sha256": sha256(tmp / "weights.safetensors"),
            # the manifest: every other file of the bundle, so that an edited threshold or config is refused too
            "files": {f: sha256(tmp / f) for f in FILES if f != "bundle.json"}}
    seal(tmp, info, key)
    return replace(tmp, Path(run_dir) / "model")


def seal(folder: Path, info: dict, key: Any) -> None:
    """bundle.json, and the author's ed25519 signature of it (and so of every file it lists) when there is a key."""
    (folder / "bundle.json").write_text(json.dumps(info, indent=1, default=str))
    if key is not None:
        signing.sign(folder, key)


def replace(tmp: Path, dest: Path) -> Path:
    """A bundle written whole in `tmp` put in the place of `dest` (a bundle's files are never written in place)."""
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


FOLDS = "folds"
FOLD_FILES = ("weights.safetensors", "params.json")


def check(run_dir: Path) -> dict:
    """bundle.json of a run's bundle whose every file matches its manifest (integrity, not authorship)."""
    folder = Path(run_dir) / "model"
    if not (folder / "bundle.json").is_file():
        raise CardioError(f"{run_dir} holds no model bundle (model/bundle.json); the run was made with "
                          "final_model: false, by a plugin that cannot export, or did not finish")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise CardioError(f"model bundle {folder} lacks {', '.join(missing)}")
    info = read_json(folder / "bundle.json")
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CardioError(f"{folder / 'bundle.json'} is not a {FORMAT} bundle description")
    weights = folder / "weights.safetensors"
    manifest = info.get("files")
    folds = info.get("folds") or []
    bad = [f for f in folds] if not isinstance(folds, list) else [f for f in folds if not _fold_name(f)]
    if bad:
        raise CardioError(f"{folder / 'bundle.json'} names fold(s) {bad!r}, which are not fold names (a fold model "
                          f"lives in {FOLDS}/<fold>/ inside the bundle); refused")
    expected = {f for f in FILES if f != "bundle.json"} | {f"{FOLDS}/{name}/{f}" for name in folds for f in FOLD_FILES}
    if not isinstance(manifest, dict) or set(manifest) != expected:
        raise CardioError(f"{folder / 'bundle.json'} has no manifest of the bundle's files (written by an older "
                          "cardio, or edited); export the model again")
    _inside(folder)
    for name, digest in manifest.items():
        if not (folder / name).is_file():
            raise CardioError(f"model bundle {folder} lacks {name}, which its bundle.json lists")
        if sha256(folder / name) != digest:
            raise CardioError(f"{folder / name} does not match its checksum in bundle.json (edited, damaged or "
                              "replaced); a bundle is used only as it was exported")
    known = {*manifest, "bundle.json", signing.SIGNATURE}
    extra = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                   if not p.is_dir() and str(p.relative_to(folder)) not in known)
    if extra:
        raise CardioError(f"model bundle {folder} holds files it was not exported with: {', '.join(extra[:5])}")
    if sha256(weights) != info.get("weights_sha256"):
        raise CardioError(f"{weights} does not match the checksum in bundle.json (damaged or replaced)")
    return info


def _fold_name(name: Any) -> bool:
    """A fold's name as cardio makes them (fold0, r1f2, holdout): a folder name, never a path."""
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name) is not None


def _inside(folder: Path) -> None:
    """Every file of the bundle lies inside it: a symbolic link in a bundle (to weights elsewhere) is refused."""
    links = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink())
    if links:
        raise CardioError(f"model bundle {folder} holds symbolic link(s) {', '.join(links[:5])}; a bundle's files lie "
                          "inside it; refused")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CardioError(f"{path} is not valid JSON (damaged, or not written by cardio)") from None


def free_key_path(run_dir: Path) -> Path:
    """Where report.keep_key writes the pseudonym key of a run or prediction: <folder>.key.csv beside it; one that
    is there already stops the command (a key is never replaced)."""
    path = Path(run_dir).parent / f"{Path(run_dir).name}.key.csv"
    if path.exists():
        raise CardioError(f"{path} already exists; a pseudonym key is never replaced (move it, or choose another "
                          "--out)")
    return path


def write_key(beside: Path, table, mode: int = 0o600, key: bytes | None = None) -> Path:
    """<run>.key.csv beside the run directory (owner-only): pseudonym -> input id of every row's patient
    and record, the same pseudonyms predictions.csv carries (cardio.data.pseudonyms.pseudonymize)."""
    import pandas as pd

    ids = table[["patient_id", "record_id"]].astype(str).drop_duplicates()
    codes = pseudonymize(ids, key)
    rows = pd.DataFrame({"pseudonym_patient_id": codes["patient_id"].to_numpy(), "patient_id": ids["patient_id"],
                         "pseudonym_record_id": codes["record_id"].to_numpy(), "record_id": ids["record_id"]})
    path = free_key_path(beside)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)  # never readable by others, even briefly
        with os.fdopen(fd, "w") as f:
            f.write(csv_text(rows.sort_values(["pseudonym_patient_id", "pseudonym_record_id"])))  # spreadsheet-safe
    os.chmod(path, mode)
    return path


def support(pm, plugin: str) -> str | None:
    """Why `plugin` cannot export a model bundle for `cardio predict`, or None when it can."""

    missing = [h for h in ("cardio_export_model", "cardio_import_model") if h not in plugins.hooks_of(pm, plugin)]
    if missing:
        return f"the plugin does not implement {' and '.join(missing)}"
    return None
