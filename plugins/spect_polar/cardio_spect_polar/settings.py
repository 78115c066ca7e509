"""The settings of spect_polar: its config section `spect_polar:`, each key with its default, what it means and the
values it allows (`cardio config --plugin spect_polar` prints them; the core checks a config against them before a
run starts). The cohort folder is the core's `cohort.dir` (null: the synthetic cohort below).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from cardio import Settings, setting
from cardio_response.volumetric import VolumetricResponse


@dataclass(frozen=True)
class Synthetic(Settings):
    """The synthetic cohort (cohort.dir null), written as gated NM DICOM into the cache."""

    n_patients: int = setting(103, "cohort size (the paper enrolled 103)", ge=1)
    gates: int = setting(8, "ECG gates per R-R interval (the paper: 8)", choices=(8, 16))
    slices: int = setting(24, "short-axis slices per volume (field of view stays 144 mm)", ge=16, le=64)
    size: int = setting(48, "rows = cols of each slice (field of view stays 240 mm)", ge=32, le=128)
    seed: int = setting(0, "seed of the cohort (patients, phantoms, noise)", ge=0)
    esv_outliers: int = setting(0, "patients given an implausibly small SPECT ESV reading (12-18 ml), like the one of "
                                   "103 that He et al. excluded (16 ml); their phantoms are unchanged; at most a "
                                   "tenth of the patients", ge=0)
    truth: Mapping[str, float] = setting({}, "planted response-model coefficients over the defaults "
                                             "(cohort.RESPONSE_COEF): late_lateral 2.2, dyssynchrony_per_sd 0.5 "
                                             "(global dyssynchrony, what PSD/PBW see), ...; {late_lateral: 0} is the "
                                             "neutral setting (profile `neutral`): the AE's planted advantage over "
                                             "PSD/PBW is gone, every other effect kept")


@dataclass(frozen=True)
class Phase(Settings):
    """Phase analysis of every gated volume (phase.py)."""

    harmonics: int = setting(1, "1 = systolic phase (first harmonic, as in the paper); 3 = diastolic variant", ge=1)
    rings: int = setting(32, "polar grid: rings from apex (centre) to base", ge=1)
    sectors: int = setting(64, "polar grid: sectors around the short axis (the AE sees rings x sectors values)", ge=1)
    band_px: float = setting(2.0, "half-width (pixels) of the myocardial band searched for the maximal count", ge=0)


@dataclass(frozen=True)
class Autoencoder(Settings):
    """The paper's four-layer linear AE on the flattened phase polar map."""

    hidden: int = setting(256, "units of layers 1 and 3 (pixels -> hidden -> features -> hidden -> pixels)", ge=1)
    features: int = setting(64, "units of layer 2: the AE-based dyssynchrony parameters (the paper: 64)", ge=1)
    activation: str = setting("relu", "between layers 1-2 and 3-4 (none: purely linear)",
                              choices=("relu", "tanh", "sigmoid", "none"))
    iterations: int = setting(1000, "optimizer steps (the paper: 1,000 iterations); engine epochs = ceil(iterations "
                                    "/ ceil(rows / batch_size))", ge=1)
    batch_size: int | None = setting(16, "rows per step; null = full batch (one step per epoch, as in a 104-map "
                                         "paper run)", ge=1)
    lr: float = setting(0.001, "AdamW learning rate (weight_decay 0: plain Adam)", gt=0)
    weight_decay: float = setting(0.0, "AdamW weight decay", ge=0)


@dataclass(frozen=True)
class Analysis(Settings):
    """He et al.'s statistics, in-sample and inside every training fold."""

    p_enter: float = setting(0.1, "univariate p below which a clinical variable enters the multivariate models",
                             ge=0, le=1)
    p_significant: float = setting(0.05, "univariate p below which an AE feature is \"significant\"", ge=0, le=1)
    max_ae_features: int = setting(1, "most significant AE features entering the clinical + AE model (the paper: "
                                      "AE #30 alone)", ge=1)
    ae_model_sizes: tuple[int, ...] = setting((), "in-sample: also fit clinical + the best k AE features for each k, "
                                                  "side by side (the paper: [1, 2], AE #30 alone and #28 + #35 "
                                                  "together)", ge=1)
    clinical: tuple[str, ...] = setting(
        ("age", "sex", "qrs_ms", "lvef", "edv", "esv", "scar_burden", "nyha", "cad", "ckd", "acei_arb", "ischemia",
         "smoking"),
        "clinical variables screened for the models: number or 0/1 columns of the cohort table (cohort.SCHEMA: sex 1 "
        "= male, yes/no 1/0); each one named is required in the table, without empty cells")
    categorical: tuple[str, ...] = setting(("sex", "nyha", "cad", "ckd", "acei_arb", "ischemia", "smoking"),
                                           "shown as n (%) in Table 1")
    logistic: str = setting("auto", "how the logistic models are fitted: auto (maximum likelihood, and Firth's "
                                    "penalized likelihood where a fold's data are separated, as on ~30 patients; the "
                                    "report says in how many folds), ml (separation drops a clinical variable or stops "
                                    "the fold), firth (always Firth's)", choices=("auto", "ml", "firth"))
    permutations: int = setting(1000, "label permutations of the whole screen -> select -> fit -> LR-test recipe "
                                      "(selection.py)", ge=1)
    seed: int = setting(0, "seed of those permutations", ge=0)
    multitest: str = setting("holm", "adjustment of the univariate screen's p-values", choices=("holm", "bh"))
    student_t: bool = setting(False, "Table 1 t-tests: false = Welch (unequal variances), true = Student (the paper)")
    table1_tests: str = setting("adaptive", "Table 1's p-values: adaptive (t-test as student_t says, or Kruskal-Wallis "
                                            "for a skewed variable; chi-square, or Fisher for a small 2x2) | paper "
                                            "(Student t and Yates' chi-square for every variable: the paper's, which "
                                            "reproduce its p, e.g. CKD 0.786)", choices=("adaptive", "paper"))


@dataclass(frozen=True)
class SpectSettings(Settings):
    """He et al.: gated SPECT phase polar maps -> autoencoder features -> logistic models."""

    section: ClassVar[str] = "spect_polar"
    clinical_csv: str | None = setting(None, "the cohort table's file name inside cohort.dir (null -> clinical.csv; "
                                             "columns: cohort.SCHEMA, one row per scan, an empty label = unknown "
                                             "response)")
    response: VolumetricResponse = setting(VolumetricResponse(baseline="esv", followup="esv_followup"),
                                           "the outcome by the paper's rule (LVESV reduction >= 15% at 6 ± 1 months): "
                                           "derived where the label is empty, checked where it is given; a "
                                           "contradiction is refused")
    outcomes: tuple[str, ...] = setting((), "other table columns that define or derive from the outcome (refused as "
                                            "covariates, permuted with the label); the rule's reduction and "
                                            "follow-up volume (response.reduction, response.followup) always are")
    min_esv_ml: float | None = setting(None, "exclude patients whose baseline ESV (ml) is below this before any "
                                             "analysis (the paper's outlier step; it states no threshold); null = "
                                             "keep every patient", gt=0)
    in_sample_analysis: bool = setting(False, "add the paper's in-sample replication to the report: the AE refitted "
                                              "on every patient and the variables chosen on the same patients "
                                              "(explanatory, optimistic; the paper profile turns it on); the "
                                              "cross-validated analysis is always reported")
    synthetic: Synthetic = setting(Synthetic(), "the synthetic cohort (cohort.dir null), written as gated NM DICOM "
                                                "into the cache")
    phase: Phase = setting(Phase(), "phase analysis of every gated volume (phase.py)")
    autoencoder: Autoencoder = setting(Autoencoder(), "the paper's four-layer linear AE on the flattened phase polar "
                                                      "map")
    analysis: Analysis = setting(Analysis(), "He et al.'s statistics, in-sample and inside every training fold")
