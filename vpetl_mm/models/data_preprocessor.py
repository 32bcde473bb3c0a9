"""mmpretrain's ``ClsDataPreprocessor`` with the normalisation chosen by name.

The image benchmarks differ in one easily-missed detail: Google's ViT checkpoints were trained on
inputs in [-1, 1] (Inception mean/std 0.5), but V-PETL Bench (like NOAH and VPT) feeds
ImageNet-normalised inputs. Writing three magic mean/std vectors into every config hides that
choice; a name makes it visible in the config and in the dumped run config.
"""
from typing import Dict, Optional, Sequence, Tuple

from mmpretrain.models.utils.data_preprocessor import ClsDataPreprocessor

from ..registry import MODELS

# mean / std on the 0-255 scale of mmpretrain's preprocessor
NORMALIZATIONS: Dict[str, Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]]] = dict(
    imagenet=((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    inception=((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    # OPENAI_CLIP_MEAN / OPENAI_CLIP_STD x 255 (timm 1.0.31 timm/data/constants.py): CLIP's and
    # EVA-02's own (mmpretrain configs/eva02/eva02-base-p14_headless.py writes the same)
    clip=((122.770938, 116.7460125, 104.09373615), (68.5005327, 66.6321579, 70.32316305)),
    none=None)


@MODELS.register_module()
class NamedNormClsDataPreprocessor(ClsDataPreprocessor):
    """A ``ClsDataPreprocessor`` whose mean and std come from a name.

    Args:
        norm: ``'imagenet'`` (mean 0.485/0.456/0.406, std 0.229/0.224/0.225: the V-PETL Bench
            convention), ``'inception'`` (0.5/0.5: what Google's ViT was pretrained with),
            ``'clip'`` (OpenAI CLIP's mean / std: CLIP and EVA-02) or ``'none'`` (inputs stay
            in 0-255).
        **kwargs: The other ``ClsDataPreprocessor`` arguments (``num_classes``, ``to_rgb``,
            ``batch_augments`` ...). ``mean`` / ``std`` are not accepted: use ``norm``.

    Examples:
        >>> data_preprocessor = dict(type='vpetl_mm.NamedNormClsDataPreprocessor',
        ...                          norm='imagenet', num_classes=47, to_rgb=True)
    """

    def __init__(self, norm: str = 'imagenet', mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, **kwargs) -> None:
        if mean is not None or std is not None:
            raise ValueError('NamedNormClsDataPreprocessor takes `norm` (one of '
                             f'{sorted(NORMALIZATIONS)}), not mean/std; use type='
                             "'ClsDataPreprocessor' for custom values (with _delete_=True).")
        if norm not in NORMALIZATIONS:
            raise ValueError(f'Unknown norm {norm!r}; choose one of {sorted(NORMALIZATIONS)}.')
        values = NORMALIZATIONS[norm]
        super().__init__(mean=values[0] if values else None, std=values[1] if values else None,
                         **kwargs)
        self.norm = norm
