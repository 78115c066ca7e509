"""Comparators of the paper's Table 2: the guideline rule, and SVM / random forest / logistic regression on
clinical covariates or on the fine-tuned network's deep features (fold_models.deep_features).

All of them work on one row per patient. Whatever is fitted (imputation, scaling, the models,
the Youden threshold) is fitted on the training fold only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from cardio import CardioError
from cardio.stats import youden_threshold

GUIDELINE = "guideline"


def _truthy(values: pd.Series) -> np.ndarray:
    """LBBB may be coded 1/0, true/false or yes/no; missing counts as absent."""
    if values.dtype == bool:
        return values.to_numpy()
    if pd.api.types.is_numeric_dtype(values):
        return (values.fillna(0).to_numpy(dtype=float) > 0)
    text = values.astype(str).str.strip().str.lower()
    return text.isin({"1", "true", "yes", "y", "lbbb"}).to_numpy()


def guideline_rule(patients: pd.DataFrame, rule: dict) -> np.ndarray:
    """1.0 where the class I indication holds: LBBB and QRS >= qrs_ms and LVEF <= lvef_max, else 0.0.

    The score is the rule itself (0/1), so its AUC equals (sensitivity + specificity) / 2 and its
    threshold is 0.5. A missing QRS, LVEF or LBBB value counts as the criterion not met.
    """
    cols = [rule["lbbb_column"], rule["qrs_column"], rule["lvef_column"]]
    missing = [c for c in cols if c not in patients.columns]
    if missing:
        raise CardioError(f"the guideline rule needs cohort column(s) {missing}; "
                          f"the cohort has {list(patients.columns)}")
    lbbb = _truthy(patients[rule["lbbb_column"]])
    qrs = pd.to_numeric(patients[rule["qrs_column"]], errors="coerce").to_numpy(dtype=float)
    lvef = pd.to_numeric(patients[rule["lvef_column"]], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        meets = lbbb & (qrs >= float(rule["qrs_ms"])) & (lvef <= float(rule["lvef_max"]))
    return meets.astype(float)


def _preprocessor(patients: pd.DataFrame, covariates: list[str]) -> ColumnTransformer:
    """Median-impute and standardize numeric covariates; one-hot encode the others (e.g. sex as M/F)."""
    numeric = [c for c in covariates if pd.api.types.is_numeric_dtype(patients[c]) or patients[c].dtype == bool]
    other = [c for c in covariates if c not in numeric]
    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
    if other:
        parts.append(("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                   OneHotEncoder(handle_unknown="ignore")), other))
    return ColumnTransformer(parts)


def make_classifiers(patients: pd.DataFrame, covariates: list[str], config: dict, seed: int,
                     calibration_cv: int | None = None) -> dict[str, Pipeline]:
    """Unfitted scikit-learn pipelines (preprocessing + model) for each enabled covariate model."""
    missing = [c for c in covariates if c not in patients.columns]
    if missing:
        raise CardioError(f"ecg_transfer.baselines.covariates {missing} are not cohort columns; "
                          f"the cohort has {list(patients.columns)}")
    out = {}
    svm, rf = config["svm"], config["rf"]
    if svm["enabled"]:
        # Platt scaling of the SVM margin on inner folds (scikit-learn's replacement for probability=True);
        # fit_pipeline keeps its slope from running backwards
        svc = SVC(C=float(svm["C"]), kernel=svm["kernel"], gamma=svm["gamma"], class_weight="balanced")
        cv = int(calibration_cv or svm["calibration_cv"])
        out["svm"] = Pipeline([("prep", _preprocessor(patients, covariates)),
                               ("model", CalibratedClassifierCV(svc, method="sigmoid", cv=cv, ensemble=False))])
    if rf["enabled"]:
        out["random_forest"] = Pipeline([("prep", _preprocessor(patients, covariates)),
                                         ("model", RandomForestClassifier(
                                             n_estimators=int(rf["n_estimators"]), max_depth=rf["max_depth"],
                                             min_samples_leaf=int(rf["min_samples_leaf"]),
                                             class_weight="balanced", random_state=seed, n_jobs=1))])
    lr = config.get("logistic") or {"enabled": False}
    if lr["enabled"]:
        out["logistic"] = Pipeline([("prep", _preprocessor(patients, covariates)),
                                    ("model", LogisticRegression(C=float(lr["C"]), class_weight="balanced",
                                                                 max_iter=2000))])
    return out


@dataclass
class ClinicalBaselines:
    """The fitted comparators of one fold: rule settings, fitted pipelines and their thresholds."""

    rule: dict | None
    covariates: list[str]
    models: dict[str, Pipeline] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    def scores(self, patients: pd.DataFrame) -> dict[str, np.ndarray]:
        """Probability of response (the rule: 0/1) for each comparator, one value per row of `patients`."""
        out = {}
        if self.rule is not None:
            out[GUIDELINE] = guideline_rule(patients, self.rule)
        for name, model in self.models.items():
            out[name] = model.predict_proba(patients[self.covariates])[:, 1]
        return out


def platt_prior(y: np.ndarray) -> float:
    """The probability a flat Platt fit gives every row: the mean of Platt's smoothed targets
    ((N+ + 1) / (N+ + 2) for a positive, 1 / (N- + 2) for a negative; Platt 1999, section 2.2)."""
    y = np.asarray(y).astype(int)
    pos, neg = int(y.sum()), int(y.size - y.sum())
    return (pos * (pos + 1.0) / (pos + 2.0) + neg / (neg + 2.0)) / y.size


def fit_pipeline(pipe: Pipeline, x: pd.DataFrame | None, y: np.ndarray) -> Pipeline:
    """Fit a comparator; an SVM's Platt map from margin to probability is held non-decreasing.

    Platt's slope is fitted on the margins of inner folds. With a weak signal in a small cohort, an RBF
    SVM's cross-validated margins often rank the held-out patients backwards (leaving a fold out tilts the
    rest's class balance the other way), the fitted slope comes out decreasing, and the final SVM's margin,
    which orders its own training patients well, is turned upside down (in-sample AUC far below 0.5).
    The log-likelihood is concave in (slope, intercept), so the fit constrained to a non-decreasing map is
    the unconstrained one when its slope has the right sign, and otherwise slope 0 with the intercept of
    the targets' mean: every patient gets the same probability (the inner folds found no ranking to keep).
    """
    pipe.fit(x, y)
    model = pipe.steps[-1][1]
    if isinstance(model, CalibratedClassifierCV) and model.method == "sigmoid":
        for fitted in model.calibrated_classifiers_:
            for sigmoid in fitted.calibrators:
                if sigmoid.a_ > 0:  # probability = expit(-(a_ * margin + b_)): a_ > 0 falls with the margin
                    sigmoid.a_, sigmoid.b_ = 0.0, -float(np.log(platt_prior(y) / (1.0 - platt_prior(y))))
    return pipe


def out_of_fold(pipe: Pipeline, x: pd.DataFrame | None, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Response probabilities of the training rows, each from a copy of `pipe` fitted without its fold."""
    oof = np.zeros(len(y))
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        fitted = fit_pipeline(clone(pipe), x.iloc[train] if x is not None else None, y[train])
        oof[test] = fitted.predict_proba(x.iloc[test] if x is not None else None)[:, 1]
    return oof


def fit_baselines(patients: pd.DataFrame, y: np.ndarray, config: dict, seed: int) -> ClinicalBaselines:
    """Fit the comparators on the training fold's patients (one row each) and pick their thresholds.

    The threshold of the SVM and the forest is Youden's on out-of-fold scores within the training
    fold (`threshold_cv` inner folds), since a forest's in-sample scores separate the training
    patients almost perfectly and would give a meaningless cut-off; threshold_cv=0 uses in-sample scores.
    """
    y = np.asarray(y).astype(int)
    covariates = list(config["covariates"])
    rule = dict(config["guideline"]) if config["guideline"]["enabled"] else None
    out = ClinicalBaselines(rule=rule, covariates=covariates)
    if rule is not None:
        out.thresholds[GUIDELINE] = 0.5
    if len(np.unique(y)) < 2:
        raise CardioError("the training fold holds patients of one class only; the covariate models cannot be fitted")
    x = patients[covariates] if covariates else None
    minority = int(np.bincount(y).min())
    k = min(int(config["threshold_cv"]), minority)
    # the SVM's calibration folds split the (inner) training rows again: each needs both classes
    inner_minority = minority - int(np.ceil(minority / k)) if k >= 2 else minority
    cal = min(int(config["svm"]["calibration_cv"]), inner_minority)
    if config["svm"]["enabled"] and cal < 2:
        raise CardioError(f"the training fold has only {minority} patient(s) of its rarer class: too few to "
                          "calibrate the SVM; use more patients, fewer folds, or "
                          "ecg_transfer.baselines.svm.enabled=false")
    for name, pipe in make_classifiers(patients, covariates, config, seed, calibration_cv=cal).items():
        fit_pipeline(pipe, x, y)
        scores = out_of_fold(pipe, x, y, k, seed) if k >= 2 else pipe.predict_proba(x)[:, 1]
        out.models[name] = pipe
        out.thresholds[name] = youden_threshold(y, scores)
    return out
