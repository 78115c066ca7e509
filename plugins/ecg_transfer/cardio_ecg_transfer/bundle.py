"""The final FoldModels as a cardio model bundle, and back: every ResNet's weights and threshold, and the
comparators (the guideline rule's settings; the SVM, forest and logistic pipelines on clinical covariates
and on deep features) with their thresholds. No pickle.

The scikit-learn pipelines travel as skops arrays (cardio_sklearn.sklearn_to_array) and are rebuilt only when
every type in them is one of TRUSTED; a pipeline is far more than its coefficients (imputers, one-hot
categories, calibrators, trees), so rebuilding each attribute by hand, as perfusion_polar can for a scaler
and a linear model, would be a second copy of scikit-learn's state.
"""
from __future__ import annotations

import sklearn
import torch

from cardio import CardioError, ModelState
from cardio_ecg_transfer.baselines import ClinicalBaselines
from cardio_ecg_transfer.finetune import BeatModel
from cardio_ecg_transfer.fold_models import FoldModels
from cardio_ecg_transfer.resnet import build_resnet
from cardio_sklearn import sklearn_from_array, sklearn_to_array

#: What baselines.make_classifiers builds, and nothing else: a bundle naming any other type is refused.
#: The forest's trees (sklearn.tree._tree.Tree) hold node index arrays that scikit-learn follows unchecked,
#: so they are trusted as far as the bundle is (a file this plugin wrote).
TRUSTED = (
    "sklearn.pipeline.Pipeline",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.svm._classes.SVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.linear_model._logistic.LogisticRegression",
)
FORMAT = 1


def _baselines_params(b: ClinicalBaselines | None, prefix: str, tensors: dict) -> dict | None:
    if b is None:
        return None
    for name, pipe in b.models.items():
        tensors[f"{prefix}.{name}"] = sklearn_to_array(pipe)
    return {"rule": b.rule, "covariates": list(b.covariates), "models": list(b.models),
            "thresholds": {k: float(v) for k, v in b.thresholds.items()}}


def export(models: FoldModels) -> ModelState:
    """The final model's arrays (ResNet weights beat<i>.*, skops pipelines baselines.* and deep.*) and params."""
    tensors: dict = {}
    beats = []
    for i, m in enumerate(models.beat_models):
        tensors.update({f"beat{i}.{k}": v for k, v in m.model.state_dict().items()})
        beats.append({"name": m.name, "arch": m.model.arch, "n_outputs": m.model.n_outputs, "init": m.init,
                      "threshold": float(m.threshold)})
    params = {"format": FORMAT, "beat_models": beats,
              "baselines": _baselines_params(models.baselines, "baselines", tensors),
              "deep": _baselines_params(models.deep, "deep", tensors), "deep_source": int(models.deep_source),
              "scikit-learn": sklearn.__version__}
    return ModelState(tensors, params)


def _beat_model(state: ModelState, i: int, p: dict) -> BeatModel:
    net = build_resnet(p["arch"], n_outputs=int(p["n_outputs"]))
    weights = {k.removeprefix(f"beat{i}."): v for k, v in state.tensors.items() if k.startswith(f"beat{i}.")}
    try:
        net.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
    except RuntimeError:  # missing, extra or mis-shaped weights
        raise CardioError(f"the model bundle's weights of {p['name']} do not fit a {p['arch']}") from None
    return BeatModel(name=p["name"], model=net.eval(), threshold=float(p["threshold"]), init=p["init"])


def _baselines(state: ModelState, prefix: str, p: dict | None) -> ClinicalBaselines | None:
    if p is None:
        return None
    out = ClinicalBaselines(rule=p["rule"], covariates=list(p["covariates"]), thresholds=dict(p["thresholds"]))
    for name in p["models"]:
        key = f"{prefix}.{name}"
        if key not in state.tensors:
            raise CardioError(f"the model bundle lacks the array {key!r}")
        out.models[name] = sklearn_from_array(state.tensors[key], TRUSTED, what=f"model bundle array {key!r}")
    return out


def load(state: ModelState) -> FoldModels:
    """The FoldModels `export` described; a bundle of another format or with a foreign type is one line."""
    p = state.params
    if p.get("format") != FORMAT:
        raise CardioError(f"the ecg_transfer model bundle has format {p.get('format')!r}, this plugin reads "
                          f"{FORMAT}: it was exported by another version")
    try:
        return FoldModels(beat_models=[_beat_model(state, i, b) for i, b in enumerate(p["beat_models"])],
                          baselines=_baselines(state, "baselines", p["baselines"]),
                          deep=_baselines(state, "deep", p["deep"]), deep_source=int(p["deep_source"]))
    except (KeyError, TypeError) as e:
        raise CardioError(f"the ecg_transfer model bundle's params.json lacks or mistypes {e}") from None

