"""The settings of mmode_septal_flash: its config section `mmode_septal_flash:`, each key with its default, what it
means and the values it allows (`cardio config --plugin mmode_septal_flash` prints them; the core checks a config
against them before a run starts). The cohort folder is the core's `cohort.dir` (labels.csv, sequences/, septum/;
null: the synthetic cohort below).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cardio import CardioError, Settings, setting


@dataclass(frozen=True)
class Events(Settings):
    """Valve events (ms after the first R peak) when labels.csv has no mvc_ms/avo_ms."""

    mvc_ms: int = setting(50, "mitral valve closure", ge=0)
    avo_ms: int = setting(120, "aortic valve opening", ge=0)


@dataclass(frozen=True)
class Synthetic(Settings):
    """The embedded cohort (the planted effects are printed in the report)."""

    n_patients: int = setting(143, "sequences, as in the paper", ge=2)
    n_sf: int = setting(55, "of them with septal flash, as in the paper (at most n_patients)", ge=0)
    size: int = setting(128, "frame size in pixels (square)", ge=16)
    frame_time_ms: float = setting(20.0, "50 frames/s", gt=0)
    seed: int = setting(12, "cohort seed", ge=0)
    flash_amplitude: float = setting(0.05, "SF: peak septal excursion toward the LV between MVC and AVO, share of "
                                           "image width", ge=0)
    flash_spread: float = setting(0.3, "per-patient amplitude factor drawn from U[1 - spread, 1 + spread]", ge=0,
                                  le=1)
    septal_excursion: float = setting(0.035, "systolic septal motion toward the LV in every patient, share of image "
                                             "width")
    lateral_excursion: float = setting(0.06, "systolic lateral-wall motion toward the septum, share of image width")
    motion_noise: float = setting(0.004, "beat-to-beat septal jitter (SD, share of image width; smoothed over "
                                         "frames)", ge=0)
    speckle: float = setting(0.5, "speckle strength (0: none)", ge=0)

    def __post_init__(self) -> None:
        if self.n_sf > self.n_patients:
            raise CardioError(f"config key mmode_septal_flash.synthetic.n_sf = {self.n_sf} is out of range; allowed: "
                              f"at most n_patients ({self.n_patients})")


@dataclass(frozen=True)
class MMode(Settings):
    """The virtual anatomical M-mode."""

    backend: str = setting("torch", "torch: batched grid_sample (fast path); vtk: vtkImageReslice (the paper's tool)",
                           choices=("torch", "vtk"))
    size: tuple[int, ...] = setting((500, 500), "depth samples x time samples over one cycle, as in the paper", ge=2)
    length_mm: int | None = setting(90, "line length in mm where the clip is calibrated (DICOM ultrasound regions, "
                                        "or the table's pixel_spacing_mm); null: always `length`", gt=0)
    length: float = setting(0.6, "line length as a share of the image width, for clips without a calibration", gt=0)
    rv_share: float = setting(0.25, "share of the line on the RV side of the septal point (the rest crosses the LV)",
                              ge=0, le=1)
    offsets: int = setting(5, "offline augmentation: lines through the 15th septal point -k..+k (k=5: the 10th to the "
                                 "20th, x11, the paper)",
                           ge=0)

    def __post_init__(self) -> None:
        if len(self.size) != 2:
            raise CardioError(f"config key mmode_septal_flash.mmode.size = {list(self.size)} is out of range; "
                              "allowed: two numbers, [depth, time]")


@dataclass(frozen=True)
class Model(Settings):
    """DenseNet-121 (torchvision), 2-unit softmax head, every layer trained."""

    input_size: int = setting(128, "network input (the paper: 256, profile `paper`; 128 keeps a CPU run to "
                                   "minutes)", ge=32)
    variants: tuple[str, ...] = setting(("full", "cropped"), "full M-mode and cropped (upper half in depth, first "
                                                             "half of the cycle)", choices=("full", "cropped"))
    weights: str | None = setting(None, "null: from scratch; imagenet (torchvision download); or a path to "
                                        "DenseNet-121 weights (.pt/.pth state dict, .safetensors, or RadImageNet's "
                                        "Keras .h5) named <name>-<first 8 hex of its sha256>.<ext>")
    contrast: tuple[float, ...] = setting((0.5, 2.0), "online random contrast factor range (training only)", gt=0)
    val_augment: bool = setting(True, "validation records seen through every shifted line, as the paper (23 x 11 = "
                                      "253 samples); false: the unshifted line only")

    def __post_init__(self) -> None:
        if len(self.contrast) != 2 or self.contrast[0] > self.contrast[1]:
            raise CardioError(f"config key mmode_septal_flash.model.contrast = {list(self.contrast)} is out of "
                              "range; allowed: [low, high], low <= high")


@dataclass(frozen=True)
class Train(Settings):
    """Engine settings of both networks (over the core's `train`)."""

    epochs: int = setting(1, "the paper: 5 (profile `paper`); one pass over the x11 samples is ~125 steps", ge=0)
    batch_size: int = setting(8, "the paper: 4", ge=1)
    lr: float = setting(0.001, "as the paper", gt=0)
    optimizer: str = setting("adam", "any torch.optim class by name (as the paper: adam)")
    weight_decay: float = setting(0.0, "none in the paper", ge=0)
    grad_clip: float = setting(1.0, "max gradient norm (the core's default); Keras' Adam in the paper clips none "
                                    "(paper: 0)", ge=0)
    scheduler: str = setting("none", "constant learning rate, as the paper (or a scheduler of the core's train."
                                     "scheduler)")
    patience: int = setting(0, "no early stopping: the best validation epoch is kept", ge=0)


@dataclass(frozen=True)
class Attention(Settings):
    """Grad-CAM++ and the attention score."""

    depth_band: tuple[float, ...] = setting((0.15, 0.45), "septal depth band, shares of the M-mode depth (the "
                                                          "septum sits at rv_share)", ge=0, le=1)
    n_examples: int = setting(3, "patients per class in each overlay figure", ge=0)


@dataclass(frozen=True)
class SeptalFlashSettings(Settings):
    """Saiz-Vivo et al.: virtual M-mode -> DenseNet-121 -> Grad-CAM++."""

    section: ClassVar[str] = "mmode_septal_flash"
    lv_side: str = setting("right", "image side the LV lies on (right in the usual A4C display); orients the normal",
                           choices=("right", "left"))
    events: Events = setting(Events(), "valve events (ms after the first R peak) when labels.csv has no "
                                       "mvc_ms/avo_ms")
    synthetic: Synthetic = setting(Synthetic(), "the embedded cohort (the planted effects are printed in the report)")
    mmode: MMode = setting(MMode(), "the virtual anatomical M-mode")
    model: Model = setting(Model(), "DenseNet-121 (torchvision), 2-unit softmax head, every layer trained")
    train: Train = setting(Train(), "engine settings of both networks (over the core's `train`)")
    attention: Attention = setting(Attention(), "Grad-CAM++ and the attention score")
