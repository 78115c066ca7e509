"""cardio plugin ecg_transfer: beat spectrograms, a ResNet pretrained on MIT-BIH and fine-tuned for CRT response."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cardio-ecg-transfer")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"
