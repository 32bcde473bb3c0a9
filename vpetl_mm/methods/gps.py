"""GPS (Zhang et al., CVPR 2024): gradient-based parameter selection, a masked sparse update.

Before training, the gradients of a supervised contrastive loss on the training set (frozen
model) pick, for every output row of every weight matrix, the ``k`` input connections with the
largest accumulated ``|grad|``; only those entries (and the biases) train. GPS masks the
gradients of the full weights; here the selected entries are a ``(rows, k)`` parameter added
to the frozen weight through its forward, which is the same update under Adam without weight
decay (GPS's recipe: elementwise, so masked entries never move), and is merged exactly.
"""
from typing import Callable, Iterable, List, Set, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod

_LAYERS = (nn.Linear, nn.Conv2d, nn.Conv3d)


def supcon_loss(features: torch.Tensor, labels: torch.Tensor,
                temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al.) over a flat batch, all samples as anchors.

    With the views of each image stacked along the batch (``[view 1; view 2]``, labels
    repeated) this is SupConLoss(contrast_mode='all', base_temperature=temperature) on
    ``(B, views, D)`` features, as GPS computes it; features are L2-normalised first.
    """
    z = F.normalize(features.flatten(1).float(), dim=1)
    logits = z @ z.t() / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float('-inf'))
    log_prob = logits - logits.logsumexp(dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    if not bool((counts > 0).any()):
        raise ValueError('GPS selection needs samples that share a label (two views of each '
                         'image give them): got none in a batch.')
    mean_log_prob = log_prob.masked_fill(~positives, 0.).sum(dim=1)[counts > 0] / counts[
        counts > 0]
    return -mean_log_prob.mean()


def top_k_per_row(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Column indices ``(rows, k)`` of the ``k`` largest scores of each row (sorted)."""
    return scores.flatten(1).topk(k, dim=1).indices.sort(dim=1).values


class SparseDelta(nn.Module):
    """``k`` trainable entries per output row of a frozen weight: ``W + scatter(values)``.

    ``columns`` (which entries) is a persistent buffer, ``-1`` until the selection pass.
    """

    def __init__(self, base: nn.Module, k: int) -> None:
        super().__init__()
        rows = base.weight.shape[0]
        self.values = nn.Parameter(torch.zeros(rows, k))
        self.register_buffer('columns', torch.full((rows, k), -1, dtype=torch.long))
        self.ready = False
        self.merged = False
        self.register_load_state_dict_post_hook(self._after_load)

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.values)  # zero-init: the frozen layer is unchanged at step 0

    @staticmethod
    def _after_load(module: 'SparseDelta', incompatible) -> None:
        module.ready = bool((module.columns >= 0).all())

    def delta(self, base: nn.Module) -> torch.Tensor:
        flat = base.weight.new_zeros(base.weight.shape[0], base.weight[0].numel())
        flat = flat.scatter(1, self.columns, self.values.to(flat.dtype))
        return flat.view_as(base.weight)

    def hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if self.merged or not self.ready:
            return output
        delta = self.delta(module)
        if isinstance(module, nn.Linear):
            return output + F.linear(args[0], delta)
        return output + module._conv_forward(args[0], delta, None)

    @torch.no_grad()
    def merge(self, base: nn.Module) -> None:
        base.weight.add_(self.delta(base))

    @torch.no_grad()
    def unmerge(self, base: nn.Module) -> None:
        base.weight.sub_(self.delta(base))


@PETL_METHODS.register_module()
class GPS(BasePETLMethod):
    """Gradient-based parameter selection: k entries per weight row, chosen from the data.

    Every ``nn.Linear`` and convolution of the backbone (ViT: the patch embedding, qkv, proj,
    fc1, fc2) gets ``k`` trainable entries per output row, and its bias trains; norms,
    position embeddings and the CLS token stay frozen, as GPS. The entries are chosen by a
    calibration pass (``PETLCalibrationHook`` with ``views=2`` and the contrastive
    augmentation, before training): SupCon gradients (temperature 0.07) of the frozen
    model's output features in train mode (drop path on, as GPS), summed over one epoch,
    top-k ``|grad|`` per row.

    Parameters ``(k + 1) * rows``: ViT-B/16 ``(k + 1) * 83,712`` = 167,424 at GPS's VTAB
    ``k = 1`` (published 0.22M counts the head too: 769 * classes, 0.21M on average with the
    per-task k of GPS's scripts, docs/image.md). Zero-init; mergeable (exact).

    Args:
        k: Entries per output row (GPS's ``times_para``).
        temperature: SupCon temperature of the selection pass.

    Examples:
        >>> petl = dict(type='GPS', k=1)
        >>> custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook', views=2,
        ...                      pipeline={{_base_.gps_contrast_pipeline}})]
    """
    DEFAULTS = dict(k=1, temperature=0.07)
    MERGEABLE = True
    CALIBRATES = True

    @staticmethod
    def targets(backbone: nn.Module) -> List[Tuple[str, nn.Module]]:
        """Host layers GPS selects in: (path relative to the backbone, layer)."""
        return [(path, m) for path, m in backbone.named_modules()
                if isinstance(m, _LAYERS) and 'petl_' not in path]

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        narrow = min(m.weight[0].numel() for _, m in self.targets(anatomy.backbone))
        if not 1 <= self.k <= narrow:
            raise ValueError(f'GPS k={self.k} must be between 1 and the narrowest row '
                             f'({narrow} inputs).')

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.layers = self.targets(anatomy.backbone)

    def inject(self, anatomy: Anatomy) -> None:
        for path, module in self.layers:
            delta = self.attach_near(anatomy, path, SparseDelta(module, self.k))
            self.hook_fold(module, delta, delta.hook)

    def trainable_base_params(self, anatomy: Anatomy) -> Set[str]:
        # the biases' parameter names, not '<layer path>.bias': a layer may be a view of
        # parameters registered elsewhere (mmseg ViT's qkv: torch MHA's in_proj_bias)
        names = {id(p): n for n, p in anatomy.backbone.named_parameters()}
        return {names[id(m.bias)] for _, m in self.layers if m.bias is not None}

    @property
    def calibrated(self) -> bool:
        return all(inj.module.ready for inj in self.injected)

    @torch.enable_grad()  # also when called under no_grad (evaluation code)
    def calibrate(self, anatomy: Anatomy,
                  batches: Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]]) -> None:
        """The selection pass. It runs the host in train mode (dropout and drop path on), as
        GPS's ``calculate_gradient`` calls ``model.train()`` before its gradient loop
        (FightingFighting/GPS@c050245 train_gps.py); the wrapper's eval mode is restored after.
        """
        weights = [host.weight for _, host in self._folds]
        flags = [w.requires_grad for w in weights]
        scores = [torch.zeros_like(w) for w in weights]
        mode = anatomy.backbone.training
        for inj in self.injected:
            inj.module.ready = False  # the frozen model, without an earlier selection
        try:
            anatomy.backbone.train(True)
            for w in weights:
                w.requires_grad_(True)
            for inputs, labels in batches():
                output = anatomy.backbone(inputs)
                loss = supcon_loss(_features(output), labels.to(inputs.device).long(),
                                   self.temperature)
                grads = torch.autograd.grad(loss, weights, allow_unused=True)
                for score, grad in zip(scores, grads):
                    if grad is not None:  # summed over the epoch, then |.| (GPS)
                        score.add_(grad)
        finally:
            anatomy.backbone.train(mode)
            for w, flag in zip(weights, flags):
                w.requires_grad_(flag)
        for (delta, _), score in zip(self._folds, scores):
            delta.columns.copy_(top_k_per_row(score.abs(), self.k))
            delta.ready = True


def _features(output) -> torch.Tensor:
    """One vector per sample from a backbone output: its last tensor, spatially averaged."""
    while isinstance(output, (tuple, list)):
        output = output[-1]
    return output.flatten(2).mean(dim=2) if output.ndim > 2 else output
