"""Image transforms that work around breakages of the pinned stack (docs/image.md)."""
from typing import Dict

import mmcv
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter as _MMPretrainColorJitter

from ..registry import TRANSFORMS


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """``mmcv.adjust_hue`` (cv2 path) that also runs on NumPy 2 for negative factors.

    mmcv adds ``np.uint8(hue_factor * 255)`` to the uint8 hue channel, relying on NumPy 1's
    wrap-around of negative values; NumPy 2 raises ``OverflowError`` instead. The shift modulo
    256 is the same rotation.
    """
    import cv2
    dtype = img.dtype
    h, s, v = cv2.split(cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL))
    shift = np.uint8(int(hue_factor * 255) % 256)
    with np.errstate(over='ignore'):
        h = h + shift  # uint8 arithmetic: the rotation across the hue circle
    return cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2BGR_FULL).astype(dtype)


@TRANSFORMS.register_module()
class ColorJitter(_MMPretrainColorJitter):
    """mmpretrain's ``ColorJitter`` (same arguments and sampling) with a NumPy-2-safe hue.

    Examples:
        >>> dict(type='vpetl_mm.ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
        ...      hue=0.1)
    """

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        order, brightness, contrast, saturation, hue = self._rand_params()
        for index in order:
            if index == 0 and brightness is not None:
                img = mmcv.adjust_brightness(img, brightness, backend=self.backend)
            elif index == 1 and contrast is not None:
                img = mmcv.adjust_contrast(img, contrast, backend=self.backend)
            elif index == 2 and saturation is not None:
                img = mmcv.adjust_color(img, alpha=saturation, backend=self.backend)
            elif index == 3 and hue is not None:
                img = adjust_hue(img, hue)
        results['img'] = img
        return results
