"""Config: merge order, typed --set, and one-line errors with exit code 2 and no traceback."""
import pytest
import yaml

from cardio import config
from cardio.data import CardioError


def test_set_values_are_typed_and_merged_over_plugin_defaults():
    cfg = config.resolve({"data": {"n": 3, "name": "x"}}, None, ("train.lr=0.1", "data.n=5", "subgroups=[sex, site]"))
    assert cfg["train"]["lr"] == 0.1 and cfg["data"] == {"n": 5, "name": "x"} and cfg["subgroups"] == ["sex", "site"]


def test_profile_applies_below_user_overrides(tmp_path):
    defaults = {"model": {"arch": "resnet18", "epochs": 2},
                "profiles": {"paper": {"model": {"arch": "resnet50", "epochs": 50}}}}
    user = tmp_path / "u.yaml"
    user.write_text("model:\n  epochs: 7\n")
    cfg = config.resolve(defaults, user, ("profile=paper",))
    assert cfg["model"] == {"arch": "resnet50", "epochs": 7}


def test_unknown_key_names_the_nearest_valid_key():
    with pytest.raises(CardioError, match=r"unknown config key train\.lrr; did you mean train\.lr\?"):
        config.resolve({}, None, ("train.lrr=1",))


def test_wrong_type_is_an_error():
    with pytest.raises(CardioError, match="train.epochs must be int"):
        config.resolve({}, None, ("train.epochs=many",))


@pytest.mark.parametrize("content,args,message", [
    (None, ("--config", "missing.yaml"), "does not exist"),
    ("a: [1, 2\n", ("--config", "bad.yaml"), "is not valid YAML"),
    ("- 1\n- 2\n", ("--config", "bad.yaml"), "must hold a mapping"),
    ("trian:\n  epochs: 2\n", ("--config", "bad.yaml"), "did you mean train?"),
    (None, ("--set", "train.epochs=lots"), "must be int"),
    (None, ("--set", "nokey"), "expects key=value"),
    (None, ("--set", "cv.folds=1"), "cv.folds = 1 is out of range; allowed: >= 2"),
    (None, ("--set", "cv.folds=-2"), "cv.folds = -2 is out of range"),
    (None, ("--seed", "-1"), "seed = -1 is out of range"),
    (None, ("--device", "tpu"), "--device 'tpu' is not a device; use auto, cpu, cuda or cuda:N"),
    (None, ("--set", "train.batch_size=0"), "train.batch_size = 0 is out of range"),
    (None, ("--set", "stats.level=1.5"), "stats.level = 1.5 is out of range; allowed: > 0 and < 1"),
    (None, ("--set", "cv.method=loo"), "cv.method = 'loo' is out of range; allowed: one of kfold"),
    ("seed: !!python/object/apply:os.system [echo hi]\n", ("--config", "bad.yaml"), "tags are not allowed"),
    (None, ("--set", "report.display_names={lvef: 3}"), "report.display_names: 'lvef' must map to a non-empty text"),
    (None, ("--set", "report.display_names=[lvef]"), "report.display_names must be dict"),
])
def test_config_errors_are_one_line_exit_2(cardio_cli, tmp_path, content, args, message):
    if content is not None:
        (tmp_path / "bad.yaml").write_text(content)
    proc = cardio_cli("run", "--plugin", "toy", *args)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and message in err
    assert not (tmp_path / "runs").exists()  # nothing written for a refused run


def test_resolved_config_is_written_to_the_run(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "report.figures=false",
               "--seed", "3", check=True)
    written = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert written["train"]["epochs"] == 1 and written["seed"] == 3 and written["data"]["n_patients"] == 60


def test_cardio_config_prints_every_core_key_with_its_comments(cardio_cli):
    proc = cardio_cli("config", "--plugin", "toy", check=True)
    text = proc.stdout
    assert "# cardio core defaults" in text and "# plugin toy" in text
    for line in config.core_defaults().text.splitlines():  # the packaged file verbatim, comments included
        assert line in text
    assert "display_names: {}     # name -> what tables and figures show" in text


def test_cardio_config_with_options_prints_what_a_run_would_use(cardio_cli, tmp_path):
    (tmp_path / "mine.yaml").write_text("train: {epochs: 7}\n")
    text = cardio_cli("config", "--plugin", "toy", "--config", "mine.yaml", "--set", "train.lr=0.5",
                      check=True).stdout
    shown = yaml.safe_load(text)
    assert shown["train"]["epochs"] == 7 and shown["train"]["lr"] == 0.5 and shown["data"]["n_patients"] == 60
    assert text.startswith("# plugin toy, --config mine.yaml --set train.lr=0.5: the config a run")
    bad = cardio_cli("config", "--plugin", "toy", "--set", "train.lrr=0.5")
    assert bad.returncode != 0 and "train.lrr" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_display_names_reach_the_config():
    cfg = config.resolve({}, None, ("report.display_names={lvef: LVEF (%), resnet: ResNet-18}",))
    assert cfg["report"]["display_names"] == {"lvef": "LVEF (%)", "resnet": "ResNet-18"}


def test_exponent_numbers_are_numbers_in_set_and_in_files(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-3 as text; the README's `--set train.lr=3e-4` must be a float."""
    from cardio.config import core_defaults, load_yaml, parse_set, resolve

    assert parse_set("train.lr=3e-4") == {"train": {"lr": 3e-4}}
    assert parse_set("a=1e3x") == {"a": "1e3x"}
    (tmp_path / "c.yaml").write_text("train:\n  lr: 1E-3\n  weight_decay: 5e-5\n")
    assert load_yaml(tmp_path / "c.yaml")["train"] == {"lr": 1e-3, "weight_decay": 5e-5}
    cfg = resolve({}, tmp_path / "c.yaml", ("train.grad_clip=2e0",))
    assert cfg["train"]["lr"] == 1e-3 and cfg["train"]["grad_clip"] == 2.0 and core_defaults()["train"]["lr"] == 0.001
