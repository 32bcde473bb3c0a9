"""Peer LoRA implementations on the same host, for the efficiency comparison (benchmark only).

The comparison holds everything but the LoRA code fixed: the same host backbone (a timm ViT
inside mmpretrain's ``TIMMBackbone``), the same classifier, batch, optimizer and train step. Each
variant puts one rank-8 update (alpha 8) on every fused ``qkv`` layer, the one placement all
three libraries can express (peft and mmpretrain match whole ``nn.Linear`` modules, so they
cannot adapt only the q and v slices of a fused qkv, as vpetl_mm's image default does):

* ``vpetl_mm-LoRA``: ``PETLBackbone`` with ``LoRA(targets='qkv')``;
* ``peft-LoRA``: HF peft's ``inject_adapter_in_model`` (:class:`PeftLoRA`; ``pip install -e
  .[benchmark]``: peft is not a dependency of vpetl_mm);
* ``mmpretrain-LoRAModel``: mmpretrain's own ``LoRAModel`` wrapper.

Examples:
    >>> cfg.model.backbone = PEERS['peft-LoRA'](cfg.model.backbone)  # a PETLBackbone config
"""
import copy
from typing import Callable, Dict, Sequence

from mmengine.model import BaseModule

from ...registry import MODELS

RANK, ALPHA, TARGET = 8, 8., 'qkv'


def _host(backbone: dict) -> dict:
    if 'PETLBackbone' not in str(backbone.get('type')):
        raise ValueError('Peer variants replace a vpetl_mm.PETLBackbone; model.backbone is '
                         f'{backbone.get("type")!r}.')
    return copy.deepcopy(backbone['backbone'])


@MODELS.register_module()
class PeftLoRA(BaseModule):
    """HF peft's LoRA layers injected into an mm backbone; everything else frozen.

    Args:
        backbone: Config of the host backbone (built in the config's default scope).
        r: LoRA rank.
        lora_alpha: Scale numerator (the update is scaled by ``lora_alpha / r``).
        target_modules: Module-name suffixes peft adapts.

    Examples:
        >>> backbone = dict(type='vpetl_mm.PeftLoRA', r=8, lora_alpha=8, target_modules=['qkv'],
        ...                 backbone=dict(type='TIMMBackbone', model_name='vit_base_patch16_224'))
    """

    def __init__(self, backbone: dict, r: int = RANK, lora_alpha: float = ALPHA,
                 target_modules: Sequence[str] = (TARGET, )) -> None:
        super().__init__()
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as exc:
            raise ImportError('The peft-LoRA efficiency variant needs HF peft, a benchmark-only '
                              "extra: pip install -e '.[benchmark]'.") from exc
        self.module = MODELS.build(backbone)
        self.module.init_weights()  # the host's own init first, as PETLBackbone does
        inject_adapter_in_model(LoraConfig(r=r, lora_alpha=lora_alpha,
                                           target_modules=list(target_modules)), self.module)
        for name, param in self.module.named_parameters():
            param.requires_grad = 'lora_' in name

    def init_weights(self) -> None:
        pass  # done in __init__: a second host init would reset peft's zero-initialised B

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def _vpetl(backbone: dict) -> dict:
    return dict(backbone, petl=dict(type='LoRA', rank=RANK, alpha=ALPHA, targets=TARGET))


def _peft(backbone: dict) -> dict:
    return dict(type='vpetl_mm.PeftLoRA', backbone=_host(backbone), r=RANK, lora_alpha=ALPHA,
                target_modules=[TARGET])


def _mmpretrain(backbone: dict) -> dict:
    # mmpretrain's LoRAModel matches module names by suffix; it freezes all non-LoRA weights.
    return dict(type='mmpretrain.LoRAModel', module=_host(backbone), rank=RANK, alpha=ALPHA,
                targets=[dict(type=TARGET)])


#: variant name -> function from the config's PETLBackbone dict to the variant's backbone dict.
PEERS: Dict[str, Callable[[dict], dict]] = {
    'vpetl_mm-LoRA': _vpetl, 'peft-LoRA': _peft, 'mmpretrain-LoRAModel': _mmpretrain}

