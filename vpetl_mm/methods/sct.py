"""SCT (Zhao et al., IJCV 2024): salient channel tuning.

A calibration pass over the training set with the frozen model scores every channel of the
residual stream entering ``norm2`` (after the attention residual) of each block; each block
then trains one ``K x K`` linear map on its ``K`` most salient channels,
``x[..., S] <- x[..., S] + W x[..., S] + b``, applied to the stream itself (so both the MLP
branch and the residual see it).
"""
from typing import Callable, Iterable, List, Tuple

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod


class SalientChannelMix(nn.Module):
    """``x[..., S] += W x[..., S] + b`` in place on the stream (a forward pre-hook on norm2).

    The selected channels ``S`` are a persistent buffer (``-1`` until calibrated), so they
    travel with every checkpoint, adapter-only ones included.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, channels)
        self.register_buffer('index', torch.full((channels, ), -1, dtype=torch.long))
        self.ready = False
        self.register_load_state_dict_post_hook(self._after_load)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.linear.weight, std=.02)  # SCT's init
        nn.init.zeros_(self.linear.bias)

    @staticmethod
    def _after_load(module: 'SalientChannelMix', incompatible) -> None:
        module.ready = bool((module.index >= 0).all())

    def select(self, index: torch.Tensor) -> None:
        self.index.copy_(index)
        self.ready = True

    def hook(self, module: nn.Module, args) -> None:
        if not self.ready:  # the calibration pass runs the frozen model
            return
        x = args[0]
        selected = x.index_select(-1, self.index)
        # In place: the host passes this same tensor to norm2 and as the MLP residual
        # (mmpretrain `ffn(ln2(x), identity=x)`, timm `x + mlp(norm2(x))`), and SCT changes
        # the stream, not just the MLP input.
        x.index_copy_(-1, self.index, selected + self.linear(selected).to(x.dtype))


def channel_scores(sums: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """SCT's score: per-class channel L2 norm over samples x tokens, averaged over classes.

    Args:
        sums: ``(classes, C)`` sums of squared activations per class.
        present: ``(classes, )`` whether each class had samples (absent classes do not count).
    """
    return sums[present].sqrt().mean(dim=0)


@PETL_METHODS.register_module()
class SCT(BasePETLMethod):
    """Salient channel tuning: K x K mixing of each block's K most salient channels.

    Channels are scored by a calibration pass (``PETLCalibrationHook``, before training):
    the frozen model runs over the training set without augmentation, the stream entering
    ``norm2`` of every block is collected without the CLS (prefix) tokens, each class's
    channel L2 norm is averaged over classes, and the top K per block are kept. Defaults as
    V-PETL's SCT: K = 96, trunc-normal(0.02) weights, zero bias: ViT-B/16
    12 * (96 * 96 + 96) = 111,744 parameters (published 0.11M). Not zero-init (SCT's init).
    Only SCT's ``sct_attn`` placement is provided.

    Args:
        channels: K, the channels selected and mixed per block.

    Examples:
        >>> petl = dict(type='SCT', channels=96)
        >>> custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook')]
    """
    DEFAULTS = dict(channels=96)
    ZERO_INIT = False
    CALIBRATES = True
    TOKENS = ('sequence', )
    SITES = ('norm2', )

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        widths = {b.dim for b in anatomy.blocks}
        if not 1 <= self.channels <= min(widths):
            raise ValueError(f'SCT channels={self.channels} must be between 1 and the token '
                             f'width {min(widths)}.')

    def inject(self, anatomy: Anatomy) -> None:
        for block in anatomy.blocks:
            mix = SalientChannelMix(self.channels)
            self.attach(block, 'norm2', mix)
            self.hook(anatomy.site(block, 'norm2'), mix.hook, pre=True)

    @property
    def calibrated(self) -> bool:
        return all(inj.module.ready for inj in self.injected)

    @torch.no_grad()
    def calibrate(self, anatomy: Anatomy,
                  batches: Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]]) -> None:
        prefix = anatomy.num_prefix_tokens()
        sums: List[torch.Tensor] = [torch.zeros(0, b.dim) for b in anatomy.blocks]
        labels = {}

        def collect(index: int, module, args) -> None:
            tokens = args[0][:, prefix:].float()
            per_sample = tokens.pow(2).sum(dim=1)  # (B, C): over this sample's tokens
            y = labels['y'].to(per_sample.device)
            grown = sums[index]
            if grown.shape[0] <= int(y.max()):
                grown = torch.cat((grown.to(per_sample.device),
                                   per_sample.new_zeros(int(y.max()) + 1 - grown.shape[0],
                                                        grown.shape[1])))
            sums[index] = grown.to(per_sample.device).index_add_(0, y, per_sample)

        handles = [anatomy.site(b, 'norm2').register_forward_pre_hook(
            lambda m, a, i=b.index: collect(i, m, a)) for b in anatomy.blocks]
        for inj in self.injected:
            inj.module.ready = False  # score the frozen model, without any earlier selection
        seen = 0
        try:
            for inputs, y in batches():
                labels['y'] = y.long()
                anatomy.backbone(inputs)
                seen += len(y)
        finally:
            for handle in handles:
                handle.remove()
        if not seen:
            raise ValueError('SCT calibration got no training samples.')
        for inj, block_sums in zip(self.injected, sums):
            present = block_sums.abs().sum(dim=1) > 0
            top = channel_scores(block_sums, present).topk(self.channels).indices
            inj.module.select(top.sort().values.to(inj.module.index.device))
