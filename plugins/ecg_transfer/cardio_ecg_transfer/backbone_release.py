"""The MIT-BIH backbones as release artefacts built purely from public data (`cardio data build mitdb-resnet18`), so
that a user need not pretrain: the plugin's own pretraining (pretrain.fit_pretraining: DS1 only, split by record into
fitting and validation records; DS2 is never read) exported with its model card; the core writes the safetensors
file named by its sha256 and `cardio data place FILE` checks a downloaded one against the hashes recorded in
releases.json before a run starts from it (`ecg_transfer.pretrain.weights_file`).
"""
from __future__ import annotations

import dataclasses
import json
from functools import partial
from pathlib import Path

import torch

from cardio import engine
from cardio_ecg_transfer import aami
from cardio_ecg_transfer.beat_images import input_spec
from cardio_ecg_transfer.beat_metrics import classification_results
from cardio_ecg_transfer.settings import ARCHS, NAMESPACE, EcgSettings
from cardio_public.weights import Artefact, Release

#: The sha256 of each built file, with the command, seed, libraries and CPU that built it (the build is a pure function
#: of them: tests/plugins/ecg_transfer/test_backbone_release.py builds twice; another CPU model may round differently,
#: so a hash holds for the CPU it names); `cardio data place` accepts the entries with "release": true (the others
#: record the reproducibility check's tiny builds).
RECORDED = Path(__file__).with_name("releases.json")
FORMAT = "cardio-ecg-backbone/1"


def releases() -> dict[str, Release]:
    """{mitdb-<arch>: Release} for the paper's three ResNets."""
    recorded = json.loads(RECORDED.read_text()) if RECORDED.is_file() else {}
    return {f"mitdb-{arch}": Release(
        plugin="ecg_transfer", build=partial(build, arch),
        description=f"{arch} pretrained on MIT-BIH DS1 beat spectrograms (AAMI N/S/V/F/Q), the start ecg_transfer "
                    "fine-tunes",
        recorded={e["file"]: e["sha256"] for e in recorded.get(f"mitdb-{arch}", []) if e.get("release", True)},
        use=f"ecg_transfer.pretrain.weights_file={{path}} --set ecg_transfer.pretrain.arch={arch}") for arch in ARCHS}


def build(arch: str, config: dict, ctx) -> Artefact:
    """Pretrain `arch` on DS1 as a run's prepare stage does (seed ctx.seed) and describe it for its release."""
    from cardio_ecg_transfer import pretrain

    s = EcgSettings.of(config)
    s = dataclasses.replace(s, pretrain=dataclasses.replace(s.pretrain, arch=arch))
    config = {**config, NAMESPACE: s.as_dict()}  # the build's own copy: the caller's config is left as it was
    root = pretrain.mitdb_root(config, ctx)
    records = aami.ds1_records(s.pretrain.records)
    fitted = pretrain.fit_pretraining(root, records, config, ctx, seed=ctx.seed, name=f"release-{arch}", arch=arch)
    results = classification_results(fitted.val.y, pretrain.predict(fitted, fitted.val, ctx))
    model = fitted.model
    kept = ("fs", "mitdb_lead", "preprocess", "spectrogram", "pretrain")
    settings = {k: v for k, v in s.as_dict().items() if k in kept}
    metadata = {"format": FORMAT, "arch": arch, "n_outputs": str(model.n_outputs), "n_side": str(model.n_side),
                "input": json.dumps(input_spec(config, s.fs), sort_keys=True),
                "classes": json.dumps(list(aami.AAMI_CLASSES)), "task": "AAMI beat classes, MIT-BIH DS1",
                "seed": str(ctx.seed), "settings": json.dumps(settings, sort_keys=True, default=str),
                "prior_shift": json.dumps([round(float(v), 6) for v in fitted.shift])}
    return Artefact(tensors=dict(model.state_dict()), metadata=metadata,
                    card=model_card(arch, fitted, results, settings, ctx.seed))


def model_card(arch: str, fitted, results: dict, settings: dict, seed: int) -> str:
    """The release's model card: data, split, metrics and intended use (markdown)."""
    pc = results["per_class"]
    pt = settings["pretrain"]
    rows = "\n".join(f"| {c} | {pc[c]['support']} | {_pct(pc[c]['se'])} | {_pct(pc[c]['ppv'])} |"
                     for c in aami.AAMI_CLASSES)
    return f"""# Model card: mitdb-{arch}

**Model.** torchvision {arch} with a one-channel first convolution (cardio_ecg_transfer.resnet.SpectrogramResNet),
{fitted.model.n_side} side features per beat before the head, 5 outputs (AAMI N, S, V, F, Q). Built by
`cardio data build mitdb-{arch} --seed {seed}` at the settings below (every one in the file's metadata; torch
{torch.__version__}, CPU: {engine.cpu_model()}).

**Data.** MIT-BIH Arrhythmia Database (PhysioNet, ODC-By 1.0), lead {settings['mitdb_lead']}, {settings['fs']} Hz;
beat spectrograms as the plugin makes them (window {settings['spectrogram']['nperseg']}, overlap
{settings['spectrogram']['noverlap']}, beat length {settings['preprocess']['beat_length']}). Only de Chazal's DS1
records were read; DS2, the inter-patient test set, was not.

**Split.** DS1 split by record: fitting records {', '.join(fitted.fit_records)}
({sum(fitted.train.counts().values())} beats used, per class {fitted.train.counts()}); validation records
{', '.join(fitted.val_records)} (early stopping, prior strength, the metrics below).

**Training.** epochs {pt['epochs']} (ran {len(fitted.fit.history)}, best {fitted.fit.best_epoch}), batch
{pt['batch_size']}, lr {pt['lr']}, at most {pt['max_beats_per_class']} beats per class, balance power
{pt['balance_power']}, seed {seed}.

**Metrics** on the held-out DS1 validation records ({results['n']} beats; not a test set: these records chose the
epoch): accuracy {results['accuracy']:.3f}, macro F1 (N, S, V, F) {results['macro_f1']:.3f}, balanced accuracy
{results['balanced_accuracy']:.3f}.

| class | beats | Se | +P |
|---|---|---|---|
{rows}

**Intended use.** The starting weights of ecg_transfer's fine-tuning (`cardio data place` the file, then
`--set ecg_transfer.pretrain.weights_file=PATH`); the head is replaced. Not a beat classifier for clinical use, and
its figures are not inter-patient test results (benchmarks/aami_interpatient.py makes those, ledgered).
"""


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"
