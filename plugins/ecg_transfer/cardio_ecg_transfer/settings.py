"""The plugin's settings: one config section, `ecg_transfer`, declared below (EcgSettings), and where the keys of
earlier versions moved.

The cohort's location and the switch for files outside it are the core's (`cohort.dir`,
`cohort.allow_outside_paths`); everything else of the plugin is under `ecg_transfer:`. A config
that still uses an old key is refused in one line naming the new one (PluginInfo.moved_keys).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cardio import CardioError, Settings, setting
from cardio_response.volumetric import VolumetricResponse

NAMESPACE = "ecg_transfer"
#: Sections of earlier versions that moved whole under the namespace (the plugin's part of `report` moved too).
SECTIONS = ("preprocess", "spectrogram", "pretrain", "finetune", "baselines", "gradcam")
#: The data.* keys of earlier versions and their keys now.
DATA_KEYS = {
    "data.cohort_dir": "cohort.dir",
    "data.allow_outside_paths": "cohort.allow_outside_paths",
    "data.n_patients": f"{NAMESPACE}.synthetic.n_patients",
    "data.synthetic_seed": f"{NAMESPACE}.synthetic.seed",
    "data.seconds": f"{NAMESPACE}.synthetic.seconds",
    "data.synthetic_effects": f"{NAMESPACE}.synthetic.effects",
    **{f"data.{k}": f"{NAMESPACE}.{k}" for k in ("fs", "lead", "leads", "skip_bad", "mitdb_dir", "mitdb_lead")},
}


def _leaves(node: dict, prefix: str) -> list[str]:
    out = []
    for key, value in node.items():
        path = f"{prefix}.{key}"
        out += _leaves(value, path) if isinstance(value, dict) and value else [path]
    return out


def moved_keys() -> dict[str, str]:
    """Every key of earlier versions -> its key now, most specific first (config.check_moved names the first found):
    each data.* key and effect, each key of the sections that moved, the plugin's report keys, then the sections."""
    ns = EcgSettings.defaults()
    out = {f"data.synthetic_effects.{k}": f"{NAMESPACE}.synthetic.effects.{k}" for k in ns["synthetic"]["effects"]}
    out.update(DATA_KEYS)
    # the validation share of a training fold is the core's now: it chooses every plugin's validation rows
    out.update({f"{NAMESPACE}.finetune.val_fraction": "train.val_fraction",
                "finetune.val_fraction": "train.val_fraction"})
    # the SVM is tuned (C, gamma) in inner folds instead of Platt-calibrated: its inner folds' key was renamed
    out[f"{NAMESPACE}.baselines.svm.calibration_cv"] = f"{NAMESPACE}.baselines.svm.tune_cv"
    for section in SECTIONS:
        out.update({leaf: f"{NAMESPACE}.{leaf}" for leaf in _leaves(ns[section], section)})
    out.update({f"report.{k}": f"{NAMESPACE}.report.{k}" for k in ns["report"]})
    out.update({section: f"{NAMESPACE}.{section}" for section in SECTIONS})
    out["data"] = NAMESPACE
    return out


# The section itself: each key with its default, what it means and the values it allows (`cardio config --plugin
# ecg_transfer` prints them; the core checks a config against them before a run starts).

@dataclass(frozen=True)
class Effects(Settings):
    """Planted effects on the synthetic cohort's response logit (the report states them)."""

    notch: float = setting(7.0, "per unit of mid-QRS notch depth (0-1, centred at 0.45; in the waveform only, no "
                                "column)")
    qrs_per_ms: float = setting(0.018, "per ms of true QRS duration (centred at 170 ms)")
    lbbb: float = setting(0.8, "true LBBB (1/0)")
    lvef_per_pct: float = setting(0.04, "per % of LVEF (centred at 27 %)")
    dm: float = setting(-0.5, "diabetes (1/0)")
    scar_per_pct: float = setting(-0.025, "per % of scar (centred at 26 %)")
    intercept: float = setting(0.5, "logit at the centres")
    noise_sd: float = setting(0.4, "SD of the unexplained part of the logit", ge=0)


@dataclass(frozen=True)
class Synthetic(Settings):
    """The embedded synthetic cohort, used when cohort.dir is null."""

    n_patients: int = setting(71, "synthetic cohort size", gt=0)
    seed: int = setting(0, "seed of the synthetic cohort", ge=0)
    seconds: float = setting(10, "length of each synthetic ECG (s)", gt=0)
    effects: Effects = setting(Effects(), "planted effects on the synthetic cohort's response logit (the report "
                                          "states them); they build in the paper's claim (a synthetic table checks "
                                          "the pipeline, it is no evidence). Neutral setting: notch: 0 (every other "
                                          "effect kept), no planted edge for the ECG")


@dataclass(frozen=True)
class Preprocess(Settings):
    """Filtering and beat windows."""

    highpass_hz: float = setting(0.5, "zero-phase Butterworth high-pass cut-off (Hz) against baseline wander; 0 "
                                      "disables", ge=0)
    beat_length: int = setting(256, "samples per beat window after resampling", ge=8)
    rr_factor: float = setting(1.2, "a beat window spans rr_factor x the RR interval around its R peak (the paper's "
                                    "1.2 RR)", gt=0)
    max_beats_per_record: int = setting(8, "keep at most this many beats per cohort ECG (evenly spaced) for speed; "
                                           "0 keeps all", ge=0)


@dataclass(frozen=True)
class SignalChecks(Settings):
    """What a cohort ECG must look like to be read (plausibility.py; cardio validate and cardio run check every
    record whole, docs/data/ecg_transfer.md "Signal plausibility")."""

    heart_rate_bpm: tuple[float, float] = setting((30.0, 150.0), "median heart rate (R peaks at the stated sampling "
                                                                 "rate) a cohort ECG may have; outside it the rate "
                                                                 "the table or the file states is taken for wrong "
                                                                 "(widen it for a cohort of tachycardias)", ge=1,
                                                  le=600)
    qrs_amplitude_mv: tuple[float, float] = setting((0.03, 20.0), "median QRS peak-to-trough (mV) a cohort ECG may "
                                                                  "have; outside it its values are taken for another "
                                                                  "unit (microvolts, ADC counts, volts)", gt=0)
    same_recording: bool = setting(True, "compare the patients' ECGs by signal (R-R intervals, then the waveform): "
                                         "one recording under two patients (a re-export, a shifted copy) is refused")


@dataclass(frozen=True)
class Spectrogram(Settings):
    """Each beat window's STFT image."""

    nperseg: int = setting(64, "STFT Hamming window length (samples of the beat window)", ge=2)
    noverlap: int = setting(56, "STFT window overlap (samples, fewer than nperseg)", ge=0)
    log: bool = setting(True, "log magnitude, log(|STFT| + 1e-6); false: linear magnitude")
    standardize: bool = setting(True, "z-score each beat's spectrogram (removes gain differences between datasets)")

    def __post_init__(self) -> None:
        if self.noverlap >= self.nperseg:
            raise CardioError(f"config key {NAMESPACE}.spectrogram.noverlap = {self.noverlap} is out of range; "
                              f"allowed: < nperseg ({self.nperseg})")


ARCHS = ("resnet18", "resnet50", "resnet101")
OPTIMIZER = "any torch.optim class by name (adamw, sgd, ...)"
SCHEDULER = "the core's: cosine | none | step | plateau | onecycle"


@dataclass(frozen=True)
class Pretrain(Settings):
    """MIT-BIH pretraining (AAMI beat classes, DS1 only)."""

    enabled: bool = setting(True, "false: no MIT-BIH pretraining and no transfer model (comparators only)")
    weights_file: str | None = setting(None, "a pretrained weights file (from a previous run's checkpoints/) to use "
                                             "instead of pretraining")
    split: str = setting("de_chazal", "DS1 (train) -> DS2 (test), paced records 102, 104, 107, 217 excluded",
                         choices=("de_chazal",))
    records: str | tuple[str | int, ...] | None = setting(None, "null (or all): all 22 DS1 records; or a list of DS1 "
                                                                "record names (DS2 names are refused)")
    arch: str = setting("resnet18", "the ResNet (the fine-tuned and from-scratch models use the same)", choices=ARCHS)
    side_features: tuple[str, ...] = setting(
        ("rr", "shape"), "per-beat inputs joined to the image features before the pretraining head only "
        "(beat_context.py): rr = log RR ratios over the record's median RR, dechazal_rr = de Chazal's pre-, post-, "
        "average (+-5 min) and local (+-10 beats) RR over the record's mean RR, shape = QRS against the record's "
        "median QRS, two_lead = QRS, T and P of both MIT-BIH channels against the record's median beat; [] = images "
        "only. Fine-tuning transfers the image backbone", choices=("rr", "dechazal_rr", "shape", "two_lead"))
    side_models: tuple[Mapping[str, Any], ...] | None = setting(
        None, "the fused protocol's side classifiers (benchmarks/aami_interpatient.py; a plugin run fits none), whose "
        "log-probabilities add: a list of {model: logistic | boosting, features: [kinds of side_features]}; null: one "
        "logistic on every side feature")
    max_beats_per_class: int | None = setting(250, "DS1 beats per AAMI class drawn at random for pretraining (null: "
                                                   "all ~51,000)", ge=1)
    max_eval_beats: int | None = setting(2000, "DS1 validation-record beats drawn at random (natural class mix) for "
                                               "early stopping, the prior strength and the run's report (null: all "
                                               "of them)", ge=1)
    balance_power: float = setting(0.5, "sampling weight per beat = class count ** -balance_power (1 balanced, 0 as "
                                        "is)", ge=0)
    prior_correction: bool = setting(True, "when testing, shift the logits from the sampled class mix back to DS1's "
                                           "natural one")
    prior_strength: float | None = setting(None, "scale of that shift (1 = exact Bayes); null: of 0, 0.25, ..., 2 the "
                                                 "one with the best macro F1 on the DS1 validation records at their "
                                                 "natural class mix (DS2 is never used)", ge=0)
    val_fraction: float = setting(0.2, "fraction of DS1 records held out (grouped by record) for early stopping, the "
                                       "prior strength and the run's report", gt=0, lt=1)
    epochs: int = setting(4, "passes over the DS1 subset (the core's loop, cardio.engine, trains)", ge=0)
    batch_size: int = setting(64, "beats per step", ge=1)
    lr: float = setting(0.001, "learning rate", gt=0)
    weight_decay: float = setting(0.0001, "AdamW weight decay", ge=0)
    optimizer: str = setting("adamw", OPTIMIZER)
    scheduler: str = setting("cosine", SCHEDULER)
    grad_clip: float = setting(1.0, "max gradient norm; 0 disables", ge=0)
    patience: int = setting(3, "epochs without improvement of DS1-validation balanced accuracy; 0 disables", ge=0)


@dataclass(frozen=True)
class Finetune(Settings):
    """Fine-tuning for CRT response, and the same ResNet from scratch."""

    transfer: bool = setting(True, "fine-tune the pretrained ResNet (new binary head)")
    scratch: bool = setting(True, "train the same ResNet from a random initialisation, same folds and settings")
    archs: tuple[str, ...] | None = setting(None, "ResNets compared in one run, each pretrained and from scratch "
                                                  "([resnet18, resnet50, resnet101] in the paper profile; each "
                                                  "pretrained on MIT-BIH once); null: pretrain.arch", choices=ARCHS)
    freeze: str = setting("layer3", "freeze the pretrained network up to this stage",
                          choices=("none", "stem", "layer1", "layer2", "layer3", "layer4"))
    balance: bool = setting(True, "sample beats so that each class, and each patient within a class, weighs the same")
    threshold_rows: str = setting("validation", "Youden cut-off on the held-out validation patients, or on the whole "
                                                "training fold (training)", choices=("validation", "training"))
    epochs: int = setting(4, "passes over the training fold's beats (the core's loop, cardio.engine, trains)", ge=0)
    batch_size: int = setting(32, "beats per step", ge=1)
    lr: float = setting(0.001, "learning rate (transfer and from scratch alike)", gt=0)
    weight_decay: float = setting(0.0001, "AdamW weight decay", ge=0)
    optimizer: str = setting("adamw", OPTIMIZER)
    scheduler: str = setting("cosine", SCHEDULER)
    grad_clip: float = setting(1.0, "max gradient norm; 0 disables", ge=0)
    patience: int = setting(3, "epochs without improvement of the validation loss; 0 disables", ge=0)

    def __post_init__(self) -> None:
        if self.archs is not None and (not self.archs or len(set(self.archs)) != len(self.archs)):
            raise CardioError(f"config key {NAMESPACE}.finetune.archs = {list(self.archs)} is out of range; allowed: "
                              "null or a list of distinct architectures")


@dataclass(frozen=True)
class Guideline(Settings):
    """The class I guideline rule as a comparator."""

    enabled: bool = setting(True, "class I rule: LBBB and QRS >= qrs_ms and LVEF <= lvef_max -> responder (score "
                                  "0/1)")
    qrs_ms: int = setting(150, "QRS duration cut-off (ms), met when QRS >= qrs_ms", ge=0)
    lvef_max: int = setting(35, "LVEF cut-off (%), met when LVEF <= lvef_max", ge=0, le=100)
    lbbb_column: str = setting("lbbb", "cohort column coding LBBB (1/0, true/false or yes/no)")
    qrs_column: str = setting("qrs_ms", "cohort column of the QRS duration (ms)")
    lvef_column: str = setting("lvef", "cohort column of the LVEF (%)")


@dataclass(frozen=True)
class Svm(Settings):
    """RBF support vector machine on the clinical covariates."""

    enabled: bool = setting(True, "RBF support vector machine (scaled covariates, balanced class weights), ranked by "
                                  "its margin (decision function); C and gamma chosen by inner folds of the training "
                                  "fold")
    C: tuple[float, ...] = setting((0.1, 1.0, 10.0), "margin penalties searched (GridSearchCV, AUC on the inner "
                                                     "folds)", gt=0)
    kernel: str = setting("rbf", "the SVM's kernel", choices=("rbf", "linear", "poly", "sigmoid"))
    gamma: tuple[float, ...] = setting((0.1, 1.0, 10.0), "kernel widths searched, in multiples of 1 / number of "
                                                         "covariates ('scale' on standardized inputs)", gt=0)
    tune_cv: int = setting(3, "inner folds (stratified, training-fold patients only) of the search of C and gamma",
                           ge=2)


@dataclass(frozen=True)
class Forest(Settings):
    """Random forest on the clinical covariates."""

    enabled: bool = setting(True, "random forest (balanced class weights)")
    n_estimators: int = setting(300, "trees", ge=1)
    max_depth: int | None = setting(None, "null: grow until leaves are pure or hold min_samples_leaf patients", ge=1)
    min_samples_leaf: int = setting(2, "smallest leaf (patients)", ge=1)


@dataclass(frozen=True)
class Logistic(Settings):
    """L2 logistic regression on the clinical covariates."""

    enabled: bool = setting(True, "L2 logistic regression (scaled inputs, balanced class weights): the comparator "
                                  "the paper names beside the SVM and the forest")
    C: float = setting(1.0, "inverse L2 penalty", gt=0)


@dataclass(frozen=True)
class Baselines(Settings):
    """The comparators fitted in the same folds."""

    covariates: tuple[str, ...] = setting(("qrs_ms", "lbbb", "lvef", "age", "sex"), "clinical covariates of the SVM "
                                                                                    "and the random forest")
    threshold_cv: int = setting(5, "inner folds giving out-of-fold training scores for the Youden threshold (0: "
                                   "in-sample)", ge=0)
    guideline: Guideline = setting(Guideline(), "the class I guideline rule")
    svm: Svm = setting(Svm(), "RBF support vector machine")
    rf: Forest = setting(Forest(), "random forest")
    logistic: Logistic = setting(Logistic(), "L2 logistic regression")
    deep_features: bool = setting(True, "also fit the SVM, forest and logistic regression on the fine-tuned "
                                        "network's pooled features (mean over a patient's beats and leads), fitted in "
                                        "the training fold only; named svm-deep, random_forest-deep, logistic-deep "
                                        "(the paper's classifiers on CNN features)")


@dataclass(frozen=True)
class Report(Settings):
    """Table 1."""

    table1_continuous: tuple[str, ...] = setting(
        ("age", "height_cm", "weight_kg", "qrs_ms", "lvef", "lvedv", "lvesv", "scar"),
        "Table 1 rows by responder status, mean ± SD (columns the cohort lacks are left out)")
    table1_categorical: tuple[str, ...] = setting(
        ("sex", "lbbb", "acei_arb", "ckd", "dm", "hypertension", "smoking", "beta_blocker", "spironolactone",
         "digoxin", "diuretic"), "Table 1 rows by responder status, n (%)")
    table1_tests: str = setting("adaptive", "Table 1's p-values: adaptive (Welch t, or Kruskal-Wallis for a skewed "
                                            "variable; chi-square, or Fisher for a small 2x2) | paper (Student t and "
                                            "the uncorrected chi-square for every variable: the paper states no test; "
                                            "these come within 0.011 of each of its printed p)",
                                choices=("adaptive", "paper"))


@dataclass(frozen=True)
class Gradcam(Settings):
    """The explain stage's Grad-CAM maps."""

    model: str = setting("transfer", "which ResNet the explain stage shows", choices=("transfer", "scratch"))
    layer: str = setting("layer2", "ResNet stage whose activations are weighted (on 33x33 spectrograms layer2 is 5x5 "
                                   "bins, layer3 3x3, layer4 2x2)", choices=("layer1", "layer2", "layer3", "layer4"))
    plus: bool = setting(False, "Grad-CAM++ instead of Grad-CAM")
    max_beats: int = setting(300, "at most this many test beats (random) go into the average maps", ge=1)


@dataclass(frozen=True)
class EcgSettings(Settings):
    """Every setting of ecg_transfer (the cohort folder is the core's cohort.dir)."""

    section: ClassVar[str] = NAMESPACE
    synthetic: Synthetic = setting(Synthetic(), "the embedded synthetic cohort, used when cohort.dir is null: "
                                                "written once under cache_dir/ecg_transfer/ and read back through "
                                                "the same loaders as a real cohort")
    response: VolumetricResponse = setting(VolumetricResponse(), "the outcome by the paper's rule (LVESV reduction "
                                                                 ">= 15% at 6 months; the window 6 ± 1 months is the "
                                                                 "SPECT paper's): derived where the label is empty, "
                                                                 "checked where it is given; a contradiction is "
                                                                 "refused")
    fs: int = setting(360, "sampling rate (Hz) the models work at; ECGs at another rate are resampled", ge=100,
                      le=20000)
    lead: str | int | None = setting(None, "cohort ECG lead: a name (case, spaces and an \"ECG \", \"EKG \" or "
                                           "\"Lead \" prefix aside: ii, ECG II and II are one lead; MLII stands in "
                                           "for II) or a 0-based index into the file's leads; null: lead II (or "
                                           "MLII) where a file has one, else its first, in every format (said once "
                                           "for the cohort). The synthetic cohort has the 12 standard leads I, II, "
                                           "III, aVR, aVL, aVF, V1-V6")
    leads: tuple[str, ...] | None = setting(None, "several leads per ECG, by name ([I, II, III, aVR, aVL, aVF, V1, V2, "
                                                  "V3, V4, V5, V6]); each file is WFDB, DICOM waveform (.dcm), EDF "
                                                  "(.edf) or CSV (one column per lead, an `fs` column in cohort.csv). "
                                                  "R peaks are found on lead II (else the first named), every lead "
                                                  "gives one spectrogram per beat, one shared network scores them all "
                                                  "and a patient's score is the mean over beats and leads. null: one "
                                                  "lead, ecg_transfer.lead")
    max_gap_s: float = setting(0.5, "longest run of missing samples (NaN, empty CSV cells) interpolated linearly, in "
                                    "seconds (logged per record); a longer gap is refused naming the file, where the "
                                    "gap starts and how long it is (docs/data/ecg_transfer.md, \"Missing samples\"); "
                                    "0 refuses any gap", ge=0, le=60)
    skip_bad: bool = setting(False, "true: leave out ECG files that exist but cannot be read (logged) instead of "
                                    "stopping the run (a file cohort.csv names that is absent is a problem of the "
                                    "table: always refused)")
    mitdb_dir: str | None = setting(None, "MIT-BIH Arrhythmia Database (WFDB); null: $CARDIO_DATA/mitdb, else "
                                          "<cache_dir>/mitdb; absent: downloaded there when online, else `cardio data "
                                          "fetch mitdb --dir DIR`")
    mitdb_lead: int = setting(0, "MIT-BIH channel for pretraining (0 = MLII in 45 of 48 records)", ge=0)
    preprocess: Preprocess = setting(Preprocess(), "filtering and beat windows")
    signal_checks: SignalChecks = setting(SignalChecks(), "signal plausibility of the cohort's ECGs: heart rate, QRS "
                                                          "amplitude, one recording under two patients")
    spectrogram: Spectrogram = setting(Spectrogram(), "each beat window's STFT image")
    pretrain: Pretrain = setting(Pretrain(), "MIT-BIH pretraining (AAMI beat classes; DS1 only, split by record "
                                             "into fitting and validation records)")
    finetune: Finetune = setting(Finetune(), "fine-tuning for CRT response, and the same ResNet from scratch")
    baselines: Baselines = setting(Baselines(), "the comparators fitted in the same folds")
    report: Report = setting(Report(), "Table 1 rows")
    gradcam: Gradcam = setting(Gradcam(), "the explain stage's Grad-CAM maps")

    def __post_init__(self) -> None:
        lead = self.lead
        if (isinstance(lead, int) and lead < 0) or (isinstance(lead, str) and not lead.strip()):
            raise CardioError(f"config key {NAMESPACE}.lead = {lead!r} must be a lead name (V1), a 0-based index (1) "
                              "or null")
        if self.leads is not None and (not self.leads or not all(n.strip() for n in self.leads)
                                       or len(set(self.leads)) != len(self.leads)):
            raise CardioError(f"config key {NAMESPACE}.leads = {list(self.leads)} must be null or a list of distinct "
                              "lead names ([I, II, V1])")
