"""cardio plugin `perfusion_polar`: a multitask ResNet on rest, stress and flow-reserve polar maps.

Yeung et al.'s method, the subject of Hagio and Murthy's editorial: a ResNet learns the 17 segment
myocardial flow reserves (step 1), then, from that backbone, impaired flow reserve and five
cardiovascular risk factors (step 2); a logistic regression on the 51 segment values is the comparator.
"""
__version__ = "0.1.0"
