"""Classification of records: supervised (:class:`TextClassifier`, trained on your labels) or zero-shot against
GB/T 4754-2017 and the chains (:class:`ZeroShotClassifier`). Both follow scikit-learn's rules (``__init__`` stores
parameters, ``fit`` returns self, learned attributes end in ``_``) and return :class:`Predictions`.

Modules: :mod:`.supervised` and :mod:`.zeroshot` (the classifiers), :mod:`.kernel_svm` (the RBF SVM saved as arrays),
:mod:`.segments` (records read as fields of text pieces), :mod:`.calibration` (temperature scaling and held-out
scoring), :mod:`.predictions` (the result and its table form) and :mod:`.fill` (tagging records without a code).
"""

from .calibration import expected_calibration_error, fit_temperature, softmax
from .fill import fill_missing_industry
from .kernel_svm import KernelSVM
from .predictions import Predictions
from .segments import segments
from .supervised import TextClassifier
from .zeroshot import ZeroShotClassifier, parse_level

__all__ = ["KernelSVM", "Predictions", "TextClassifier", "ZeroShotClassifier", "expected_calibration_error",
           "fill_missing_industry", "fit_temperature", "parse_level", "segments", "softmax"]
