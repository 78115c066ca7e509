"""cardio plugin `mmode_septal_flash`: septal flash from virtual anatomical M-modes, localized by Grad-CAM++.

Saiz-Vivó et al. (FIMH 2023): an M-mode is resliced from the apical four-chamber sequence along the
normal to the mid-basal septum; a DenseNet-121 classifies septal flash from the full and from the
cropped M-mode, and Grad-CAM++ shows where it looked.
"""
__version__ = "0.1.0"
