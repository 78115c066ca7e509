"""RadImageNet's DenseNet-121 (Mei et al. 2022), published by its authors as Keras HDF5 weights
(`RadImageNet-DenseNet121_notop.h5`), read as a torchvision DenseNet-121 state dict: the paper's start.

h5py reads the file (the `radimagenet` extra; neither TensorFlow nor Keras is needed): Keras 2's HDF5 layout, a group
per layer named in the root's `layer_names` attribute (or under `model_weights/` when the whole model was saved),
holding its `weight_names` (Keras 3's `model.save("x.h5")` writes the same layout). keras.applications' DenseNet-121
names its layers conv1/conv, conv1/bn (Keras 3: conv1_conv, conv1_bn), then conv<stage>_block<i>_{0_bn,1_conv,1_bn,
2_conv}, pool<stage>_{bn,conv} and bn; they map one to one onto torchvision's features.* (written by hand:
torchvision has no Keras importer). Convolution kernels go from Keras' (h, w, in, out) to
torch's (out, in, h, w). Keras' batch-norm epsilon is 1.001e-5 against torchvision's 1e-5: a relative difference of
1e-3 in the variance term, kept as it is.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from cardio import CardioError

_BLOCK = re.compile(r"conv(\d)_block(\d+)_(0_bn|1_conv|1_bn|2_conv)$")
_POOL = re.compile(r"pool(\d)_(bn|conv)$")
_LAYER_PART = {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2"}
_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def torch_module(layer: str) -> str | None:
    """The torchvision DenseNet-121 module of a keras.applications DenseNet-121 layer name (None: no weights)."""
    fixed = {"conv1/conv": "features.conv0", "conv1/bn": "features.norm0", "bn": "features.norm5",
             "conv1_conv": "features.conv0", "conv1_bn": "features.norm0"}  # Keras 2's names, then Keras 3's
    if layer in fixed:
        return fixed[layer]
    if m := _BLOCK.match(layer):
        return f"features.denseblock{int(m[1]) - 1}.denselayer{m[2]}.{_LAYER_PART[m[3]]}"
    if m := _POOL.match(layer):
        return f"features.transition{int(m[1]) - 1}.{'norm' if m[2] == 'bn' else 'conv'}"
    return None


def _tensor(kind: str, value: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(value, dtype=np.float32))
    return t.permute(3, 2, 0, 1).contiguous() if kind == "kernel" else t


def densenet121_from_keras(path: Path) -> dict[str, torch.Tensor]:
    """The torchvision DenseNet-121 `features.*` state dict of a Keras DenseNet-121 HDF5 weights file; a file that
    is not one is one CardioError line naming it."""
    try:
        import h5py
    except ImportError:
        raise CardioError(f"{path}: reading Keras .h5 weights needs h5py (pip install 'cardio-mmode-septal-flash"
                          "[radimagenet]')") from None
    state: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            for raw in root.attrs["layer_names"]:
                layer = raw.decode() if isinstance(raw, bytes) else str(raw)
                module = torch_module(layer)
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in root[layer].attrs["weight_names"]]
                if module is None or not names:
                    continue
                for name in names:
                    kind = name.rsplit("/", 1)[-1].split(":")[0]
                    key = "weight" if kind == "kernel" else _BN.get(kind, kind)
                    state[f"{module}.{key}"] = _tensor(kind, root[layer][name][()])
                if module.rsplit(".", 1)[-1].startswith("norm"):
                    state[f"{module}.num_batches_tracked"] = torch.tensor(0)
    except (OSError, KeyError) as e:
        raise CardioError(f"{path}: not Keras HDF5 weights ({type(e).__name__}: {str(e)[:120]})") from None
    if "features.conv0.weight" not in state or "features.norm5.weight" not in state:
        raise CardioError(f"{path}: not a Keras DenseNet-121 ({len(state)} weights of its layers found)")
    return state
