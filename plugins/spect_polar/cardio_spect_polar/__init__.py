"""cardio plugin `spect_polar`: gated SPECT MPI phase polar maps and polar-map deep learning.

Task `phase_ae` (default): autoencoder features of the LV systolic phase polar map as new
dyssynchrony parameters for CRT response (He et al.). Task `perfusion_risk`: a ResNet on rest,
stress and flow-reserve polar maps for segmental MFR and cardiovascular risk factors (Yeung et al.).
"""
__version__ = "0.1.0"
