"""The core's splits with the string ids pandas 3 backs with arrow where pyarrow is installed (issue 40: sklearn's
train_test_split indexes a pandas Index with `[key, ...]`, which an arrow-backed Index refuses with a TypeError).

CI runs this module twice: without pyarrow (the ids are Python strings) and with the `arrow` extra installed."""
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from cardio.data import inner_split, make_folds, split_ids


def _arrow_or_default(values: list[str]) -> pd.Series:
    """Arrow-backed strings where pyarrow is installed (what pandas 3 then infers), else pandas' default str."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return pd.Series(values)
    return pd.Series(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def _table(n_patients: int = 30) -> pd.DataFrame:
    """Two records per patient, string ids, a binary label per patient."""
    rng = np.random.default_rng(0)
    label = rng.permutation(np.arange(n_patients) % 2)
    return pd.DataFrame({"record_id": _arrow_or_default([f"r{i}" for i in range(2 * n_patients)]),
                         "patient_id": _arrow_or_default([f"p{i // 2:03d}" for i in range(2 * n_patients)]),
                         "label": np.repeat(label, 2)})


def test_pandas_infers_arrow_strings_where_pyarrow_is_installed():
    """The premise of this module's second CI pass: with pyarrow, a plain str column is arrow-backed."""
    pytest.importorskip("pyarrow")
    assert pd.Series(["a", "b"]).dtype.storage == "pyarrow"
    assert _table()["patient_id"].dtype.storage == "pyarrow"


def test_split_ids_is_sklearns_split_of_the_ids():
    """Positions in, ids out: the same split as sklearn's on the ids themselves (so no run's folds moved)."""
    ids = pd.Index([f"p{i:03d}" for i in range(40)], dtype=_table()["patient_id"].dtype)
    strata = pd.Series(np.arange(40) % 2, index=ids)
    fit, test = split_ids(ids, 0.25, strata, seed=3)
    want_fit, want_test = train_test_split(np.asarray(ids, dtype=object), test_size=0.25, stratify=strata.to_numpy(),
                                           random_state=3)
    assert list(fit) == list(want_fit) and list(test) == list(want_test)
    assert (strata[test] == 1).sum() == 5  # stratified: half of the 10 test patients positive


def test_inner_split_by_patient_with_string_ids():
    table = _table()
    fit, val = inner_split(table, np.arange(len(table)), 0.2, seed=1, label="label")
    assert len(fit) + len(val) == len(table) and len(val) == 12  # 6 of 30 patients, two records each
    assert not set(table["patient_id"].iloc[fit]) & set(table["patient_id"].iloc[val])


def test_holdout_and_kfold_with_string_ids():
    table = _table()
    (holdout,) = make_folds(table, {"method": "holdout", "ratios": [6, 2, 2]}, "label", seed=0)
    parts = [set(table["patient_id"].iloc[p]) for p in (holdout.train, holdout.val, holdout.test)]
    assert [len(p) for p in parts] == [18, 6, 6] and not (parts[0] & parts[1] or parts[0] & parts[2])
    folds = make_folds(table, {"method": "kfold", "folds": 5, "inner_folds": 2}, "label", seed=0)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(table)))
    assert all(len(f.inner) == 2 for f in folds)
