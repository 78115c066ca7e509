"""The settings of perfusion_polar: its config section `perfusion_polar:`, each key with its default, what it means
and the values it allows (`cardio config --plugin perfusion_polar` prints them; the core checks a config against
them before a run starts). The cohort folder is the core's `cohort.dir` (labels.csv + maps/<record_id>.npy, 3 x N x
N: rest, stress, MFR, or maps/<record_id>.csv, a ring x sector table; null: the synthetic cohort below).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cardio import CardioError, Settings, setting


@dataclass(frozen=True)
class Tables(Settings):
    """How a clinical program numbers its ring x sector CSV polar maps (docs/data/perfusion_polar.md)."""

    first_ring: str = setting("apex", "where the lowest ring number lies", choices=("apex", "base"))
    first_sector_deg: float = setting(0.0, "where the first sector (lowest number) starts, degrees counter-clockwise "
                                           "from 3 o'clock on the displayed bull's-eye (0 lateral, 90 anterior, 180 "
                                           "septal, 270 inferior)")
    direction: str = setting("counterclockwise", "which way sector numbers run, seen from the apex",
                             choices=("counterclockwise", "clockwise"))


@dataclass(frozen=True)
class Truth(Settings):
    """The synthetic cohort's planted effects (the report states them as "synthetic truth")."""

    mfr_median: float = setting(2.6, "median global MFR of a reference patient", gt=0)
    log_mfr_sd: float = setting(0.18, "patient-to-patient SD of log global MFR", ge=0)
    log_mfr_diabetes: float = setting(-0.22, "change of log global MFR with diabetes")
    log_mfr_smoking: float = setting(-0.06, "... with smoking")
    log_mfr_hypertension: float = setting(-0.10, "... with hypertension")
    log_mfr_dyslipidemia: float = setting(-0.08, "... with dyslipidemia")
    log_mfr_female: float = setting(0.08, "... in women")
    log_mfr_age_per_year: float = setting(-0.008, "... per year of age over 63")
    defect_fraction: float = setting(0.33, "share of patients with a territorial flow defect", ge=0, le=1)
    attenuation_sex_typical: float = setting(10.0, "rest attenuation depth (%) at most, anterior in women, inferior "
                                                   "in men")
    attenuation_other: float = setting(4.0, "the same in the other wall")
    septum_hypertension: float = setting(2.5, "extra septal brightness (%) at most in hypertension")
    smoking_texture: float = setting(0.0, "patchier uptake in smokers, invisible to segment means (> 0 plants a "
                                          "result only a network can find: the paper's conclusion, so 0 by default)")


@dataclass(frozen=True)
class Step(Settings):
    """One of the two training steps: engine settings over the core's `train`."""

    epochs: int = setting(8, "at most this many epochs", ge=0)
    batch_size: int = setting(32, "maps per optimizer step (raised by one while a last batch would hold a single "
                                  "map)", ge=1)
    lr: float = setting(0.001, "AdamW learning rate", gt=0)
    patience: int = setting(4, "epochs without a better validation score before stopping", ge=0)


@dataclass(frozen=True)
class PerfusionSettings(Settings):
    """Yeung et al.'s polar-map ResNet and its 17-segment comparator."""

    section: ClassVar[str] = "perfusion_polar"
    n_patients: int = setting(240, "synthetic cohort size", ge=1)
    second_scans: float = setting(0.0, "share of synthetic patients with a second rest/stress study on another date "
                                       "(a second record and map, the same risk factors; splits keep a patient's "
                                       "studies together)", ge=0, le=1)
    size: int = setting(32, "polar-map size (pixels a side) of the synthetic cohort and of the grid ring x sector "
                            "tables are resampled to (a cohort's .npy maps keep their own size, one for all); below 7 "
                            "some of the 17 AHA segments get no pixel", ge=7)
    tables: Tables = setting(Tables(), "ring x sector CSV polar maps: how the program numbers them")
    seed: int = setting(11, "synthetic cohort seed", ge=0, le=2**32 - 1)
    arch: str = setting("resnet18", "the backbone (the paper: ResNet-50, profile `paper`; 18 keeps the default run "
                                    "to minutes on a CPU)", choices=("resnet18", "resnet34", "resnet50"))
    imagenet: bool = setting(False, "true: start from torchvision ImageNet weights (needs internet once; off here)")
    weights: str | None = setting(None, "path to a torchvision ResNet state dict (.pth or .safetensors), e.g. "
                                        "ImageNet weights saved where there is internet; the report names the file "
                                        "and its sha256")
    separate_inputs: tuple[str, ...] = setting((), "per-input models beside the joint 3-map model, each map at most "
                                                   "once (Yeung et al.'s separate models; each one costs a joint "
                                                   "model's training time)",
                                                   choices=("rest", "stress", "mfr"))
    freeze: tuple[str, ...] = setting((), "parameter-name prefixes kept frozen, e.g. [conv1, bn1, layer1] (fine-tune "
                                          "later layers)")
    baseline_c: float = setting(1.0, "inverse L2 strength of the 17-segment logistic-regression baseline", gt=0)
    truth: Truth = setting(Truth(), "synthetic cohort's planted effects (the report states them as \"synthetic "
                                    "truth\")")
    step1: Step = setting(Step(), "step 1: regression of the 17 segment MFRs (stops on the validation MAE)")
    step2: Step = setting(Step(lr=0.0005), "step 2: the six risk outputs, backbone initialised from step 1 (stops "
                                           "on the mean validation AUC)")

    def __post_init__(self) -> None:
        if len(set(self.separate_inputs)) != len(self.separate_inputs):
            raise CardioError(f"config key perfusion_polar.separate_inputs = {list(self.separate_inputs)} names a map "
                              "twice; allowed: each of rest, stress, mfr at most once")
