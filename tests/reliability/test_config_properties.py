"""Property tests: no YAML document and no --set value makes the config layer raise anything but CardioError."""
from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardio import CardioError, config

PLUGIN_DEFAULTS = {"data": {"dir": None, "n_patients": 60, "lead": "II"}, "model": {"arch": "resnet18"},
                   "profiles": {"paper": {"model": {"arch": "resnet50"}}}}
KNOWN = ["seed", "device", "profile", "cv.folds", "cv.method", "cv.ratios", "cv.repeats", "train.lr",
         "train.batch_size", "train.optimizer", "train.optimizer_args", "stats.level", "stats.n_resamples",
         "data.n_patients", "data.dir", "data", "model.arch", "subgroups", "cache_dir", "explain", "train"]
SCALARS = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | \
    st.text(max_size=20)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(string.ascii_lowercase, max_size=6), inner, max_size=4), max_leaves=10)
KEYS = st.sampled_from(KNOWN) | st.text(string.ascii_lowercase + "._", min_size=0, max_size=12)
RAW = st.text(max_size=30)


def _resolves_or_refuses(user_file=None, sets=()):
    try:
        cfg = config.resolve(PLUGIN_DEFAULTS, user_file, tuple(sets))
    except CardioError as e:
        assert "\n" not in str(e)  # one line for the user
        return
    assert isinstance(cfg, dict) and set(cfg) >= {"seed", "cv", "train", "stats"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, RAW), max_size=4))
def test_set_items_with_any_text_never_raise_a_traceback(items):
    _resolves_or_refuses(sets=[f"{k}={v}" for k, v in items])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=3))
def test_set_items_of_any_shape_never_raise_a_traceback(items):
    _resolves_or_refuses(sets=items)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_yaml_documents_of_any_structure_never_raise_a_traceback(tmp_path, doc):
    import yaml

    nested: dict = {}
    for key, value in doc.items():
        node = nested
        parts = key.split(".") if key else [""]
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = value
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump(nested))
    _resolves_or_refuses(user_file=path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_any_text_as_a_config_file_never_raises_a_traceback(tmp_path, text):
    path = tmp_path / "user.yaml"
    path.write_text(text)
    _resolves_or_refuses(user_file=path)
