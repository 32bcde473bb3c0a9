"""Runner ``load_from`` for plain backbone files (VideoMAE / AdaptFormer ``{'model': ...}``)."""
from mmengine.hooks import Hook

from ..compat.video_weights import move_weights_to_backbone
from ..registry import HOOKS
from ..utils import find_petl_backbone, unwrap


@HOOKS.register_module()
class PretrainedLoadFromHook(Hook):
    """Let ``load_from`` take backbone files whose weights sit under ``model`` or ``module``.

    mmengine's ``load_from`` reads only ``state_dict``; this hook moves such a file's weights
    under the ``PETLBackbone``'s prefix (see
    :func:`~vpetl_mm.compat.video_weights.move_weights_to_backbone`) before they are loaded.

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.PretrainedLoadFromHook')]
    """

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model, wrapper = unwrap(runner.model), find_petl_backbone(runner.model)
        names = [n for n, m in model.named_modules() if m is wrapper and n]
        move_weights_to_backbone(checkpoint, f'{names[0]}.' if names else 'backbone.')
