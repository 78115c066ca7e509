"""cardio_sklearn: fitted scikit-learn objects inside a model bundle, through skops and never pickle (arrays.py), for
the plugins that keep them there (ecg_transfer); a service of its own, so that the kernel carries no skops."""
from cardio_sklearn.arrays import sklearn_from_array, sklearn_to_array

__all__ = ["sklearn_from_array", "sklearn_to_array"]
