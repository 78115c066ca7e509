"""The final SeptalFlashModel as a cardio model bundle, and back: each variant's DenseNet-121, the training mean
image its inputs are centred on, and its decision threshold, as arrays and JSON (nothing pickled)."""
from __future__ import annotations

import numpy as np
import torch

from cardio import CardioError, ModelState
from cardio_mmode_septal_flash.model import SeptalFlashNet
from cardio_mmode_septal_flash.training import THRESHOLD, Inputs, SeptalFlashModel

FORMAT = 1  # bump when the arrays or params change meaning


def export(model: SeptalFlashModel) -> ModelState:
    """Tensors `<variant>.net.*` (the network's state) and `<variant>.mean` (the (s, s) training mean image)."""
    tensors: dict = {}
    for variant, net in model.nets.items():
        # safetensors stores dense row-major tensors; the network keeps its weights channels-last
        tensors.update({f"{variant}.{k}": v.contiguous() for k, v in net.state_dict().items()})
        tensors[f"{variant}.mean"] = model.inputs[variant].mean.numpy()
    params = {"format": FORMAT, "variants": list(model.nets), "weights_source": model.weights_source,
              "thresholds": {v: float(model.thresholds.get(v, THRESHOLD)) for v in model.nets},
              "input_size": int(next(iter(model.inputs.values())).mean.shape[-1])}
    return ModelState(tensors, params)


def load(state: ModelState, input_size: int) -> SeptalFlashModel:
    """The SeptalFlashModel `export` described, for inputs of `input_size` (the bundle's config); a bundle of
    another format, size or architecture is one line."""
    p = state.params
    if p.get("format") != FORMAT or not p.get("variants"):
        raise CardioError(f"the septal-flash model bundle has format {p.get('format')!r}, this plugin reads "
                          f"{FORMAT}: it was exported by another version")
    if int(p.get("input_size", -1)) != int(input_size):
        raise CardioError(f"the septal-flash model bundle was trained on {p.get('input_size')} x {p.get('input_size')} "
                          f"inputs, its config asks for {input_size}")
    nets, inputs = {}, {}
    for variant in p["variants"]:
        prefix = f"{variant}."
        weights = {k.removeprefix(prefix): v for k, v in state.tensors.items() if k.startswith(prefix)}
        mean = weights.pop("mean", None)
        if mean is None or tuple(mean.shape) != (int(input_size),) * 2:
            raise CardioError(f"the septal-flash model bundle lacks a {input_size} x {input_size} {variant} training "
                              "mean image")
        net = SeptalFlashNet(None)
        try:
            net.load_state_dict(weights)
        except RuntimeError:  # missing, extra or mis-shaped weights: torch's message lists every one
            raise CardioError(f"the septal-flash model bundle's {variant} weights do not fit a DenseNet-121") from None
        nets[variant] = net.eval()
        inputs[variant] = Inputs(np.asarray(torch.as_tensor(mean).numpy(), dtype=np.float32))
    thresholds = {v: float(p.get("thresholds", {}).get(v, THRESHOLD)) for v in nets}
    return SeptalFlashModel(nets, inputs, str(p.get("weights_source", "")), {}, thresholds)
