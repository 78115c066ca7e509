"""Issue 57: a run folder that fits. Fold models stored in half precision (and read back as float32 within 1e-3 of
the scores of their float32 weights), nothing left in checkpoints/ once the run is finished, and the folder's size
in run.json and the log."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from cardio import CardioError, ModelState
from cardio_deploy.bundle import read_state
from cardio_deploy.folds import HALF, write_state


def _resnet_state(seed: int) -> tuple[torch.nn.Module, ModelState]:
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(num_classes=1).eval()
    tensors = dict(net.state_dict())
    tensors["threshold"] = torch.tensor([0.4321987], dtype=torch.float32)  # a small array keeps float32
    return net, ModelState(tensors, {"arch": "resnet18"})


def test_a_fold_model_in_half_precision_takes_half_the_bytes_and_scores_within_1e3(tmp_path):
    net, state = _resnet_state(0)
    write_state(tmp_path / "full", state, "toy", half=False)
    write_state(tmp_path / "half", state, "toy", half=True)
    full, half = ((tmp_path / d / "weights.safetensors").stat().st_size for d in ("full", "half"))
    assert 0.49 < half / full < 0.52
    back = read_state(tmp_path / "half")
    assert all(t.dtype == state.tensors[k].dtype for k, t in back.tensors.items())  # read back as fitted
    assert back.tensors["threshold"].item() == state.tensors["threshold"].item()
    assert back.tensors["bn1.num_batches_tracked"].dtype == torch.int64
    x = torch.randn(16, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    copy = torchvision.models.resnet18(num_classes=1).eval()
    copy.load_state_dict({k: v for k, v in back.tensors.items() if k != "threshold"})
    with torch.no_grad():
        p_full, p_half = torch.sigmoid(net(x)).numpy(), torch.sigmoid(copy(x)).numpy()
    diff = float(np.abs(p_full - p_half).max())
    assert 0 < diff < 1e-3  # rounded, not identical: the control that the weights really were halved


def test_a_half_precision_list_that_does_not_match_the_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "m").mkdir()
    save_file({"w": torch.zeros(2048)}, str(tmp_path / "m" / "weights.safetensors"),
              metadata={HALF: json.dumps(["w"])})  # w is float32: the list lies
    (tmp_path / "m" / "params.json").write_text("{}")
    with pytest.raises(CardioError, match="does not name its float16 tensors"):
        read_state(tmp_path / "m")


def test_a_finished_run_leaves_nothing_in_checkpoints_and_records_its_size(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "fold_models=true",
               check=True)
    run = tmp_path / "r"
    assert not any((run / "checkpoints").iterdir())
    disk = json.loads((run / "run.json").read_text())["disk_bytes"]
    assert disk["total"] > disk["model"] + disk["fold_models"] > 0 and disk["fold_models"] > 0
    assert "run folder: " in (run / "run.log").read_text()


def test_what_a_plugin_kept_beside_its_fits_goes_and_is_named(tmp_path):
    from cardio.study import tasks

    (tmp_path / "checkpoints" / "fit.heads").mkdir(parents=True)
    (tmp_path / "checkpoints" / "fit.heads" / "h0.pt").write_bytes(b"x" * 10)
    (tmp_path / "checkpoints" / "pretrained-resnet18.pt").write_bytes(b"x" * 100)  # ecg_transfer's start
    (tmp_path / "checkpoints" / "pretrain_results-resnet18.json").write_text("{}")  # its record stays
    assert tasks.remove_leftovers(tmp_path) == [("pretrained-resnet18.pt", 100), ("fit.heads", 10)]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["pretrain_results-resnet18.json"]
    assert tasks.remove_leftovers(tmp_path / "none") == []
