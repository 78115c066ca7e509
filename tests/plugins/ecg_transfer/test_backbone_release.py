"""Issue 56: the MIT-BIH backbones as release artefacts: `cardio data build` (weights, model card, sha256; the same
seed on CPU gives the same sha256) and `cardio data place` (a downloaded file checked against the recorded hash)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import torch

from cardio import engine
from cardio_ecg_transfer import backbone_release
from cardio_ecg_transfer.mitdb import mitdb_dir
from cardio_ecg_transfer.resnet import build_resnet, load_pretrained
from cardio_public.weights import release_metadata, sha256_of
from cardio_testing.harness import invoke

#: A build of seconds: four DS1 records, 8 beats per class, one epoch, one thread.
TINY = ("--set", "ecg_transfer.pretrain.records=[101,106,118,119]", "--set", "ecg_transfer.pretrain.epochs=1",
        "--set", "ecg_transfer.pretrain.max_beats_per_class=8", "--set", "ecg_transfer.pretrain.max_eval_beats=40",
        "--set", "train.cpu_threads=1")


@pytest.fixture
def mitdb(tmp_path, monkeypatch):
    if not (mitdb_dir() / "101.dat").is_file():
        pytest.skip("MIT-BIH is not in $CARDIO_DATA/mitdb (cardio data fetch mitdb --dir ...)")
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))


def _build(out: Path, seed: int = 0) -> tuple[Path, str]:
    result = invoke("data", "build", "mitdb-resnet18", "--out", str(out), "--seed", str(seed), *TINY)
    assert result.exit_code == 0, result.stderr
    return next(out.glob("mitdb-resnet18-*.safetensors")), result.stdout


def test_a_build_is_a_release_with_its_card_and_the_same_seed_gives_the_same_sha256(tmp_path, mitdb):
    first, card = _build(tmp_path / "a")
    second, _ = _build(tmp_path / "b")
    digest = sha256_of(first)
    assert first.name == f"mitdb-resnet18-{digest[:8]}.safetensors" and sha256_of(second) == digest
    for part in ("**Data.** MIT-BIH", "DS2, the inter-patient test set, was not", "**Split.** DS1 split by record",
                 "**Metrics** on the held-out DS1 validation records", "**Intended use.**", f"sha256 `{digest}`"):
        assert part in card
    assert (tmp_path / "a" / "SHA256SUMS").read_text() == f"{digest}  {first.name}\n"
    assert first.with_suffix(".md").read_text().startswith("# Model card: mitdb-resnet18")
    meta = release_metadata(first)
    assert meta["arch"] == "resnet18" and meta["seed"] == "0" and json.loads(meta["input"])["fs"] == 360.0
    other, _ = _build(tmp_path / "c", seed=1)
    assert sha256_of(other) != digest  # the seed is what the hash depends on
    recorded = json.loads(backbone_release.RECORDED.read_text())["mitdb-resnet18"]
    tiny = [e for e in recorded if e["file"].endswith(".safetensors") and not e["release"]]
    assert tiny and all(e["command"].endswith(" ".join(TINY)) for e in tiny)  # releases.json records this very build
    here = [e for e in tiny if (e["torch"], e["cpu"]) == (torch.__version__, engine.cpu_model())]
    if here:  # the same libraries on the same CPU model: the hash the repository records is this build's
        assert (first.name, digest) == (here[0]["file"], here[0]["sha256"])
    assert f"CPU: {engine.cpu_model()})" in card  # the card names what the hash holds for


def test_a_placed_release_is_checked_against_the_recorded_hash_and_starts_a_model(tmp_path, mitdb, monkeypatch):
    built, _ = _build(tmp_path / "a")
    refused = invoke("data", "place", str(built))
    assert refused.exit_code == 2 and "not a recorded release file" in refused.stderr
    recorded = tmp_path / "releases.json"
    recorded.write_text(json.dumps({"mitdb-resnet18": [{"file": built.name, "sha256": sha256_of(built)}]}))
    monkeypatch.setattr(backbone_release, "RECORDED", recorded)
    tampered = tmp_path / "download" / built.name
    tampered.parent.mkdir()
    tampered.write_bytes(built.read_bytes()[:-1] + b"\0")
    result = invoke("data", "place", str(tampered))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert (f"{tampered}: sha256 mismatch: expected {sha256_of(built)}, found {sha256_of(tampered)}"
            in result.stderr)
    assert not (tmp_path / "cache" / "releases").exists()  # nothing placed
    placed = invoke("data", "place", str(built))
    target = tmp_path / "cache" / "releases" / built.name
    assert placed.exit_code == 0 and f"placed {built.name}, sha256 {sha256_of(built)}" in placed.stdout
    assert f"use it: --set ecg_transfer.pretrain.weights_file={target}" in placed.stdout
    model = build_resnet("resnet18", n_outputs=1)
    meta = load_pretrained(model, target)
    assert meta["task"] == "AAMI beat classes, MIT-BIH DS1"
    from safetensors.torch import load_file

    assert torch.equal(model.state_dict()["net.conv1.weight"], load_file(str(target))["net.conv1.weight"])
