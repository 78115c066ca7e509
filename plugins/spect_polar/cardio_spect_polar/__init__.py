"""cardio plugin `spect_polar`: gated SPECT MPI phase polar maps and autoencoder dyssynchrony features.

He et al.'s method: phase analysis of gated short-axis SPECT -> phase polar map, PSD and PBW ->
a four-layer autoencoder whose layer-2 outputs are new dyssynchrony parameters -> logistic models
of CRT response, reported in-sample as in the paper and cross-validated beside it.
"""
__version__ = "0.1.0"
