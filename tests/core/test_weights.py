"""Issue 56: every starting-weights file is checked by cardio_public.weights.verify_weights_file before it is read:
against a pinned sha256, else the hash its name carries (`<name>-<first 8+ hex digits of its sha256>.<ext>`, the
convention of torchvision's files and of the project's releases); a mismatch is one line. torchvision's real download
code runs here from a file:// URL (no network)."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
import torch
import torchvision

from cardio import CardioError
from cardio_public.weights import check_file, name_hash, torchvision_model, verify_weights_file
from cardio_testing.harness import named_by_hash


def _weights(folder: Path, name: str = "r18.pth", seed: int = 1) -> tuple[dict, Path]:
    """A random resnet18 state dict saved by torch under `name` in `folder`."""
    torch.manual_seed(seed)
    state = torchvision.models.resnet18(weights=None).state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / name)
    return state, folder / name


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_named_by_its_hash_passes_and_its_whole_sha256_is_returned(tmp_path: Path) -> None:
    _, made = _weights(tmp_path)
    path = named_by_hash(made)
    assert path.name == f"r18-{_sha(path)[:8]}.pth" and name_hash(path) == _sha(path)[:8]
    assert verify_weights_file(path) == _sha(path)
    longer = path.rename(tmp_path / f"r18-{_sha(path)[:20]}.pth")  # 8 or more digits: all of them must match
    assert verify_weights_file(longer) == _sha(longer)


def test_a_wrong_file_under_a_hashed_name_is_one_line_with_both_hashes(tmp_path: Path) -> None:
    _, made = _weights(tmp_path)
    right = named_by_hash(made)
    _, other = _weights(tmp_path / "copied", seed=2)
    wrong = other.rename(other.with_name(right.name))  # another file under the right file's name
    with pytest.raises(CardioError) as e:
        verify_weights_file(wrong)
    assert str(e.value) == (f"weights file {wrong}: sha256 mismatch: expected {_sha(right)[:8]}..., "
                            f"found {_sha(wrong)}")


def test_a_pinned_sha256_is_checked_whatever_the_name(tmp_path: Path) -> None:
    _, path = _weights(tmp_path, "plain.pt")
    digest = _sha(path)
    assert verify_weights_file(path, digest) == digest
    assert verify_weights_file(path, digest[:8].upper()) == digest
    with pytest.raises(CardioError, match=f"plain.pt: sha256 mismatch: expected {'0' * 64}, found {digest}$"):
        verify_weights_file(path, "0" * 64)
    with pytest.raises(CardioError, match="plain.pt: the expected sha256 'abc' is not 8 to 64 hex digits"):
        verify_weights_file(path, "abc")


def test_a_name_without_a_hash_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    _, path = _weights(tmp_path, "plain.pt")
    with pytest.raises(CardioError, match=rf"my.setting {path}: no hash to check it against .* its sha256 is "
                                          rf"{_sha(path)}: if this is the file you mean, name it "
                                          rf"plain-{_sha(path)[:8]}.pt$"):
        verify_weights_file(path, key="my.setting")
    # the hash must end the name (`-<hex>.<ext>`), as torch.hub's and the releases' names do
    moved = path.rename(tmp_path / f"plain-{_sha(path)[:8]}.pt.bak")
    assert name_hash(moved) is None
    with pytest.raises(CardioError, match="no hash to check it against"):
        verify_weights_file(moved)
    with pytest.raises(CardioError, match=f"weights file {tmp_path / 'gone-12345678.pth'}: file not found"):
        verify_weights_file(tmp_path / "gone-12345678.pth")


def test_each_check_is_a_line_of_the_run_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, made = _weights(tmp_path)
    path = named_by_hash(made)
    logger = logging.getLogger("cardio.run")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="cardio.run"):
            checked = check_file(path, "perfusion_polar.weights")
    finally:
        logger.removeHandler(caplog.handler)
    assert checked.describe() == f"{path.name}, sha256 {_sha(path)}"
    assert f"starting weights (perfusion_polar.weights) checked: {path}, sha256 {_sha(path)}" in caplog.text


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, served: Path) -> Path:
    """torchvision's resnet18 IMAGENET1K_V1 published at `served`'s file:// URL, torch's hub cache in tmp_path:
    torchvision's own download code (torch.hub.load_state_dict_from_url, check_hash=True) fetches it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    entry = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.value
    monkeypatch.setattr(entry, "url", served.as_uri())
    return tmp_path / "torch" / "hub" / "checkpoints" / served.name


def test_the_download_path_fetches_checks_and_reads_the_published_file(tmp_path: Path, monkeypatch) -> None:
    state, made = _weights(tmp_path / "site")
    served = named_by_hash(made)
    cached = _serve(monkeypatch, tmp_path, served)
    assert not cached.exists()
    net, checked = torchvision_model("resnet18", "IMAGENET1K_V1", "perfusion_polar.imagenet=false")
    assert cached.is_file() and checked is not None and checked.path == cached and checked.sha256 == _sha(served)
    assert torch.equal(net.conv1.weight, state["conv1.weight"])


def test_a_download_whose_bytes_do_not_match_its_name_is_one_line(tmp_path: Path, monkeypatch) -> None:
    _, made = _weights(tmp_path / "site")
    right = named_by_hash(made)
    _, other = _weights(tmp_path / "other", seed=3)
    served = other.rename(tmp_path / "other" / right.name)  # the published name, other bytes
    cached = _serve(monkeypatch, tmp_path, served)
    with pytest.raises(CardioError) as e:
        torchvision_model("resnet18", "IMAGENET1K_V1", "perfusion_polar.imagenet=false")
    line = str(e.value)
    assert "\n" not in line and "invalid hash value" in line and not cached.exists()
    assert f"copy the file to {cached} (its sha256 begins {_sha(right)[:8]}), or set perfusion_polar.imagenet=false" \
        in line
