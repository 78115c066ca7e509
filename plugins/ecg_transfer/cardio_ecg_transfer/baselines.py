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
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from cardio import CardioError
from cardio_ecg_transfer.settings import Baselines, Svm
from cardio_stats import youden_threshold

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


def _svm(prep: ColumnTransformer, n_covariates: int, svm: Svm, tune_cv: int, seed: int) -> Pipeline:
    """An SVM whose C and gamma are chosen by inner folds of the rows it is fitted on (the training fold's).

    Ranked by its margin (decision_function), not by a Platt probability: a Platt map fitted on a weak signal's
    inner folds can be flat or run backwards, and a constant score is a comparator that cannot win or lose.
    gamma is given as multiples of 1 / (number of covariates), scikit-learn's 'scale' on standardized inputs,
    so the same grid serves 5 clinical covariates and 512 deep features. Class weights are balanced. The
    preprocessing (impute, standardize, one-hot) reads no label and is fitted once on the training rows; the
    search's inner folds refit only the SVM (a search over the whole pipeline cost 5x as much for the same grid).
    """
    grid = {"C": [float(c) for c in svm.C], "gamma": [float(g) / max(n_covariates, 1) for g in svm.gamma]}
    inner = StratifiedKFold(n_splits=tune_cv, shuffle=True, random_state=seed)
    search = GridSearchCV(SVC(kernel=svm.kernel, class_weight="balanced"), grid, scoring="roc_auc", cv=inner,
                          refit=True, n_jobs=1)
    return Pipeline([("prep", prep), ("model", search)])


def make_classifiers(patients: pd.DataFrame, covariates: list[str], b: Baselines, seed: int,
                     tune_cv: int | None = None) -> dict[str, Pipeline]:
    """Unfitted scikit-learn pipelines (preprocessing + model) for each enabled covariate model; the SVM's model
    is its inner-fold search of C and gamma (fit_pipeline puts the refitted best SVM in its place)."""
    missing = [c for c in covariates if c not in patients.columns]
    if missing:
        raise CardioError(f"ecg_transfer.baselines.covariates {missing} are not cohort columns; "
                          f"the cohort has {list(patients.columns)}")
    out: dict[str, Pipeline] = {}
    svm, rf = b.svm, b.rf
    if svm.enabled:
        out["svm"] = _svm(_preprocessor(patients, covariates), len(covariates), svm, tune_cv or svm.tune_cv, seed)
    if rf.enabled:
        out["random_forest"] = Pipeline([("prep", _preprocessor(patients, covariates)),
                                         ("model", RandomForestClassifier(
                                             n_estimators=rf.n_estimators, max_depth=rf.max_depth,
                                             min_samples_leaf=rf.min_samples_leaf,
                                             class_weight="balanced", random_state=seed, n_jobs=1))])
    if b.logistic.enabled:
        out["logistic"] = Pipeline([("prep", _preprocessor(patients, covariates)),
                                    ("model", LogisticRegression(C=float(b.logistic.C), class_weight="balanced",
                                                                 max_iter=2000))])
    return out


def score(model: Pipeline, x: pd.DataFrame | None) -> np.ndarray:
    """A fitted comparator's score of each row: an SVM's margin (it has no probability), else P(response)."""
    if isinstance(model.steps[-1][1], SVC):
        return np.asarray(model.decision_function(x), dtype=float)
    return model.predict_proba(x)[:, 1]


@dataclass
class ClinicalBaselines:
    """The fitted comparators of one fold: rule settings, fitted pipelines and their thresholds."""

    rule: dict | None
    covariates: list[str]
    models: dict[str, Pipeline] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    def scores(self, patients: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each comparator's score (the rule: 0/1; the SVM: its margin; else P(response)), one per row of `patients`."""
        out = {}
        if self.rule is not None:
            out[GUIDELINE] = guideline_rule(patients, self.rule)
        for name, model in self.models.items():
            out[name] = score(model, patients[self.covariates])
        return out


def fit_pipeline(pipe: Pipeline, x: pd.DataFrame | None, y: np.ndarray) -> Pipeline:
    """`pipe` fitted on (x, y); a searched model (the SVM) is replaced by its best, refitted on all of x, so
    that what is scored, saved and bundled is a plain pipeline of trusted types."""
    pipe.fit(x, y)
    model = pipe.steps[-1][1]
    if isinstance(model, GridSearchCV):
        return Pipeline([*pipe.steps[:-1], (pipe.steps[-1][0], model.best_estimator_)])
    return pipe


def out_of_fold(pipe: Pipeline, x: pd.DataFrame | None, y: np.ndarray, k: int,
                seed: int) -> np.ndarray:
    """Scores of the training rows, each from a copy of `pipe` fitted (and tuned) without its fold."""
    oof = np.zeros(len(y))
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        fitted = fit_pipeline(clone(pipe), x.iloc[train] if x is not None else None, y[train])
        oof[test] = score(fitted, x.iloc[test] if x is not None else None)
    return oof


def fit_baselines(patients: pd.DataFrame, y: np.ndarray, b: Baselines, seed: int,
                  thresholds: bool = True) -> ClinicalBaselines:
    """Fit the comparators on the training fold's patients (one row each) and pick their thresholds.

    The threshold of the SVM and the forest is Youden's on out-of-fold scores within the training
    fold (`threshold_cv` inner folds), since a forest's in-sample scores separate the training
    patients almost perfectly and would give a meaningless cut-off; threshold_cv=0 uses in-sample scores.
    `thresholds=False` leaves them at 0.5 and skips those inner fits: nested CV's refits read AUCs only.
    """
    y = np.asarray(y).astype(int)
    covariates = list(b.covariates)
    rule = b.guideline.as_dict() if b.guideline.enabled else None
    out = ClinicalBaselines(rule=rule, covariates=covariates)
    if rule is not None:
        out.thresholds[GUIDELINE] = 0.5
    if len(np.unique(y)) < 2:
        raise CardioError("the training fold holds patients of one class only; the covariate models cannot be fitted")
    x = patients[covariates] if covariates else None
    minority = int(np.bincount(y).min())
    k = min(b.threshold_cv, minority)
    # the SVM's tuning folds split the (inner) training rows again: each needs both classes
    inner_minority = minority - int(np.ceil(minority / k)) if k >= 2 else minority
    tune = min(b.svm.tune_cv, inner_minority)
    if b.svm.enabled and tune < 2:
        raise CardioError(f"the training fold has only {minority} patient(s) of its rarer class: too few to "
                          "tune the SVM; use more patients, fewer folds, or "
                          "ecg_transfer.baselines.svm.enabled=false")
    for name, pipe in make_classifiers(patients, covariates, b, seed, tune_cv=tune).items():
        fitted = fit_pipeline(clone(pipe), x, y)
        out.models[name] = fitted
        if not thresholds:
            out.thresholds[name] = 0.5
            continue
        scores = out_of_fold(pipe, x, y, k, seed) if k >= 2 else score(fitted, x)
        out.thresholds[name] = youden_threshold(y, scores)
    return out
