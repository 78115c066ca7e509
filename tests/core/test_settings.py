"""Typed plugin settings (cardio.Settings): a plugin's section declared once, with defaults, docs and allowed values;
checked when a config is resolved, one line naming the key; printed by `cardio config`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import ClassVar

import pytest
import yaml

from cardio import CardioError, PluginInfo, Settings, setting
from cardio import config as config_mod


@dataclass(frozen=True)
class Step(Settings):
    """One training step."""

    epochs: int = setting(8, "at most this many epochs", ge=0)
    lr: float = setting(0.001, "AdamW learning rate", gt=0)


@dataclass(frozen=True)
class Demo(Settings):
    """A demo plugin's settings."""

    section: ClassVar[str] = "demo"
    size: int = setting(32, "polar-map size in pixels", ge=8, le=256)
    share: float = setting(0.0, "share of patients with a second scan", ge=0, le=1)
    arch: str = setting("resnet18", "the backbone", choices=("resnet18", "resnet50"))
    inputs: tuple[str, ...] = setting((), "per-input models beside the joint one", choices=("rest", "stress"))
    weights: str | None = setting(None, "a state dict file; null: random initialisation")
    step1: Step = setting(Step(), "step 1: regression")
    step2: Step = setting(Step(lr=0.0005), "step 2: risk outputs")
    truth: Mapping[str, float] = setting({}, "planted coefficients over the generator's defaults", ge=-5, le=5)

    def __post_init__(self) -> None:
        if self.arch == "resnet50" and self.size < 64:  # a rule across keys: the plugin's own line
            raise CardioError(f"config key demo.size = {self.size} is too small for resnet50; allowed: >= 64")


def _info(**extra) -> PluginInfo:
    return PluginInfo(name="demo", description="", modality="demo", settings=Demo,
                      default_config={"train": {"epochs": 3}, "profiles": {"big": {"demo": {"size": 64}}}}, **extra)


def test_defaults_fill_the_section_and_the_config_stays_plain():
    info = _info()
    cfg = config_mod.resolve(info.default_config, None, ("demo.inputs=[rest]", "demo.share=1", "profile=big",
                                                         "demo.truth={late: 0}"))
    assert cfg["demo"] == {"size": 64, "share": 1, "arch": "resnet18", "inputs": ["rest"], "weights": None,
                           "step1": {"epochs": 8, "lr": 0.001}, "step2": {"epochs": 8, "lr": 0.0005},
                           "truth": {"late": 0}}
    assert cfg["train"]["epochs"] == 3
    s = Demo.of(cfg)
    assert (s.size, s.share, s.inputs, s.step1.epochs, s.step2.lr, s.truth["late"]) == (64, 1, ("rest",), 8,
                                                                                         0.0005, 0.0)
    assert s.as_dict() == cfg["demo"]
    with pytest.raises(FrozenInstanceError):
        s.size = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.truth["late"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize("item,message", [
    ("demo.size=4", "config key demo.size = 4 is out of range; allowed: >= 8 and <= 256"),
    ("demo.share=1.5", "config key demo.share = 1.5 is out of range; allowed: >= 0 and <= 1"),
    ("demo.step1.lr=-1", "config key demo.step1.lr = -1 is out of range; allowed: > 0"),
    ("demo.share=-1", "config key demo.share = -1 is out of range; allowed: >= 0 and <= 1"),
    ("demo.arch=vgg", "config key demo.arch = 'vgg' is out of range; allowed: one of resnet18, resnet50"),
    ("demo.inputs=[rest, mfr]", "config key demo.inputs has the item 'mfr', which is out of range; allowed: one of "
                                "rest, stress"),
    ("demo.weights=3", "config key demo.weights must be str or null, got 3"),
    ("demo.inputs=[1]", "config key demo.inputs must be str, got 1"),
    ("demo.step1.epochs=2.5", "config key demo.step1.epochs must be int, got 2.5"),
    ("demo.step1.epoch=2", "unknown config key demo.step1.epoch; did you mean demo.step1.epochs?"),
    ("demo.arch=resnet50", "config key demo.size = 32 is too small for resnet50; allowed: >= 64"),
    ("demo.truth={late: 9}", "config key demo.truth.late = 9 is out of range; allowed: >= -5 and <= 5"),
    ("demo.truth=[1]", "config key demo.truth must be dict, got [1]"),
])
def test_a_bad_value_is_one_line_naming_the_key_and_what_it_allows(item, message):
    with pytest.raises(CardioError) as e:
        config_mod.resolve(_info().default_config, None, (item,))
    assert str(e.value) == message


def test_a_profile_is_checked_when_applied():
    info = _info()
    info.default_config["profiles"]["tiny"] = {"demo": {"size": 2}}
    with pytest.raises(CardioError, match=r"^config key demo.size = 2 is out of range"):
        config_mod.resolve(info.default_config, None, ("profile=tiny",))


def test_the_section_is_declared_once():
    with pytest.raises(CardioError, match="repeats section 'demo': Demo declares its keys"):
        PluginInfo(name="demo", description="", settings=Demo, default_config={"demo": {"size": 3}})
    with pytest.raises(TypeError, match="a list default is a tuple"):
        setting([], "a list")


def test_cardio_config_text_documents_every_key_and_reads_back_as_the_defaults():
    text = config_mod.commented_defaults("demo", _info().default_config)
    assert yaml.safe_load(text)["demo"] == Demo.defaults()
    assert "demo:                       # A demo plugin's settings." in text
    assert "  size: 32                  # polar-map size in pixels; allowed: >= 8 and <= 256" in text
    assert "  inputs: []                # per-input models beside the joint one; allowed: each item one of rest, " \
           "stress" in text
    assert "  weights: null             # a state dict file; null: random initialisation" in text
    assert "  step1:                    # step 1: regression\n    epochs: 8               # at most" in text
    assert "  step2:                    # step 2: risk outputs\n    epochs: 8               # at most this many " \
           "epochs; allowed: >= 0\n    lr: 0.0005 " in text
    assert "  truth: {}                 # planted coefficients over the generator's defaults; allowed: >= -5 and " \
           "<= 5" in text


def test_a_settings_object_pickles_and_its_mappings_are_read_only():
    import pickle

    s = Demo.of(config_mod.resolve(_info().default_config, None, ("demo.truth={late: 1.5}",)))
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(TypeError, match="read-only"):
        s.truth.update(late=0.0)  # type: ignore[attr-defined]
