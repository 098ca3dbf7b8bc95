"""scikit-image 0.20 compatibility for the reference corruption code, shared by the reference scripts.

``imagecorruptions`` 1.1.2 and Hendrycks' scripts call ``skimage.filters.gaussian(...,
multichannel=True)``; scikit-image 0.20 (the oldest with Python 3.11 wheels here) spells it
``channel_axis=-1``. ``gaussian`` translates, and ``install`` puts it in place of
``imagecorruptions.corruptions.gaussian``; the filter itself is unchanged.
"""

from __future__ import annotations

import numpy as np
import skimage.filters
from imagecorruptions import corruptions as ic


def gaussian(image: np.ndarray, sigma: float, multichannel: bool | None = None, **options) -> np.ndarray:
    """``skimage.filters.gaussian`` taking the reference's ``multichannel=True`` as ``channel_axis=-1``."""
    if multichannel:
        options["channel_axis"] = -1
    return skimage.filters.gaussian(image, sigma, **options)


def install() -> None:
    """Make ``imagecorruptions`` call ``gaussian`` instead of scikit-image's."""
    ic.gaussian = gaussian
