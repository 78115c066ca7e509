"""The one check of the patients a plugin's cardio_write_synthetic receives (echo_cmr and mmode_septal_flash call it):
every problem in one line led by the plugin's name, and a good table passes."""
import numpy as np
import pandas as pd
import pytest

from cardio import CardioError
from cardio_fusion.patients import check_multimodal_patients


def _patients() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "responder": [1, 0, np.nan], "drive": [0.3, -1.2, 0.0]})


def test_a_good_table_passes_and_every_problem_is_named_at_once():
    check_multimodal_patients(_patients(), "echo_cmr")  # a missing responder is allowed
    bad = _patients().assign(patient_id=["../x", "P2", "P2"], responder=[1, 2, 0], drive=[0.1, np.inf, 0.2])
    with pytest.raises(CardioError) as e:
        check_multimodal_patients(bad, "mmode_septal_flash")
    message = str(e.value)
    assert message.startswith("mmode_septal_flash: patients has ") and "\n" not in message
    assert "'P2'" not in message and "../x" not in message  # rows, never the ids (docs/security.md)
    for part in ("not plain file names (rows 0)", "given twice (rows 1, 2)", "other than 0/1: [2]", "not finite"):
        assert part in message, message
    with pytest.raises(CardioError, match="echo_cmr: patients lacks column.*'drive'"):
        check_multimodal_patients(_patients().drop(columns="drive"), "echo_cmr")
