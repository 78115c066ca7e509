"""cardio plugin `echo_cmr`: echo videos -> r2plus1d_18 video CNN predicting cardiac-MRI findings.

Sahashi et al.'s method: one video CNN per view (A4C, A2C, PLAX) predicts CMR wall-motion abnormality, LGE and
native T1/T2/ECV; a logistic regression fitted on training rows fuses the views into one study-level prediction.
"""
__version__ = "0.1.0"
