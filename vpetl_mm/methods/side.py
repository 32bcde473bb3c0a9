"""Shared pieces of the side-network methods (LST, LAST, HST, E3VA).

A side network reads what the frozen blocks compute and hands its result to the head.
:class:`SideNetworkMethod` is their base: the host's run (without autograd where the method
``DETACHES_BACKBONE``), the capture of what the side network reads, and the add-back of its
result. Two helpers cover the sequence backbones:

* :class:`BlockTaps` records, during the host's forward, the input of the first block (the
  embedded tokens) and every block's output, detached or not, by forward (pre-)hooks;
* :func:`add_to_output` adds the side network's result to the host's output in the host's own
  layout, so any head keeps working: per-token side features ``(B, L, C)`` follow the host's
  pooling (the CLS token, the mean of the patch tokens, the ``featmap`` grid or the raw tokens),
  and one vector per image ``(B, C)`` is added to every position.
"""
import contextlib
from functools import partial
from typing import Any, ContextManager, Dict, Optional

import torch

from ..models.anatomy import Anatomy
from .base import BasePETLMethod

Tensor = torch.Tensor


class BlockTaps:
    """Per-forward features of the host blocks, read by hooks.

    Args:
        anatomy: The backbone's anatomy.
        hook: ``hook(module, fn, pre=False)``: the method's own
            :meth:`~vpetl_mm.methods.base.BasePETLMethod.hook`, so it owns the handles.
        detach: Store detached tensors (side networks that never backpropagate into the host).
    """

    def __init__(self, anatomy: Anatomy, hook, detach: bool = True) -> None:
        self.detach = detach
        self.reset()
        hook(anatomy.blocks[0].module, self._read_input, pre=True)
        for block in anatomy.blocks:
            hook(block.module, partial(self._read_output, block.index))

    def reset(self) -> None:
        self.embed: Optional[Tensor] = None  # tokens entering the first block
        self.outputs: Dict[int, Tensor] = {}  # block index -> its output tokens

    # bound methods (not closures), so deep copies (EMA models) rebind them to the copy
    def _read_input(self, module, args) -> None:
        self.embed = args[0].detach() if self.detach else args[0]

    def _read_output(self, index: int, module, args, output: Tensor) -> None:
        self.outputs[index] = output.detach() if self.detach else output

    def require(self, count: int, method: str) -> None:
        """Raise if the last forward did not run ``count`` blocks after the embedding."""
        if self.embed is None or len(self.outputs) < count:
            raise RuntimeError(f'{method} read {len(self.outputs)} of the {count} block outputs '
                               'it needs: the host forward did not run every block (or ran '
                               'outside PETLBackbone.forward).')


def host_out_type(anatomy: Anatomy) -> Optional[str]:
    """The host's ``out_type`` (mmpretrain ViT: ``'cls_token'``, ``'avg_featmap'``, ...).

    ``None`` where the host has none (timm's wrapper returns the raw tokens).
    """
    root = anatomy._get(anatomy.backbone, anatomy.profile.root)
    return getattr(root, 'out_type', None)


def add_to_output(output: Any, side: Tensor, prefix: int, out_type: Optional[str],
                  method: str) -> Any:
    """Add the side result to the last host output (the one a classification head reads).

    Args:
        output: The host backbone's output: a tensor or a tuple / list of them.
        side: Per-token features ``(B, L, C)`` with ``prefix`` leading non-patch tokens, or one
            vector per image ``(B, C)``.
        prefix: Leading non-patch tokens (CLS) of ``side``.
        out_type: The host's ``out_type`` (:func:`host_out_type`), needed for pooled outputs.
        method: The method's name, for error messages.

    Raises:
        ValueError: The output layout is one the side result cannot be added to.
    """
    feats = list(output) if isinstance(output, (tuple, list)) else [output]
    last = feats[-1] if feats else None
    if not isinstance(last, Tensor) or last.dim() not in (2, 3, 4):
        raise ValueError(f'{method} adds its side network to the host output, but the last '
                         f'output is {type(last).__name__}'
                         f'{tuple(last.shape) if isinstance(last, Tensor) else ""}; it supports '
                         "(B, C) (out_type='cls_token' / 'avg_featmap'), (B, C, H, W) "
                         "('featmap') and (B, L, C) ('raw', timm) outputs.")
    if side.dim() == 2:  # one vector per image: every position gets it
        channels = last.shape[1] if last.dim() == 4 else last.shape[-1]
        if side.shape != (last.shape[0], channels):
            raise ValueError(f'{method} side vector {tuple(side.shape)} does not fit the host '
                             f'output {tuple(last.shape)}.')
        delta = side[:, None] if last.dim() == 3 else side.view(
            *side.shape, *([1] * (last.dim() - 2)))
    else:
        if last.dim() == 3:
            delta = side
        elif last.dim() == 4:
            B, C, H, W = last.shape
            delta = side[:, prefix:].reshape(B, H, W, C).permute(0, 3, 1, 2)
        elif out_type == 'cls_token' and prefix > 0:
            delta = side[:, 0]
        elif out_type == 'avg_featmap':
            delta = side[:, prefix:].mean(dim=1)
        else:
            raise ValueError(f'{method} cannot tell how the host pooled its (B, C) output '
                             f"(out_type={out_type!r}); it supports out_type='cls_token', "
                             "'avg_featmap', 'featmap' and 'raw'.")
        if delta.shape != last.shape:
            raise ValueError(f'{method} side result {tuple(delta.shape)} does not match the '
                             f'host output {tuple(last.shape)}.')
    feats[-1] = last + delta.to(last.dtype)
    return type(output)(feats) if isinstance(output, (tuple, list)) else feats[0]


class SideNetworkMethod(BasePETLMethod):
    """Base of the side-network methods: capture, side forward, add-back.

    The host runs inside :meth:`forward_context`, without autograd when the method
    ``DETACHES_BACKBONE``. The hooks :meth:`inject` wires capture what the side network reads
    (:meth:`tap_blocks` records the embedded tokens and every block's output). After the host's
    forward, :meth:`transform_output` runs :meth:`side_forward` on the captured tensors, adds
    its result to the host output (:meth:`add_back`) and drops the captured references
    (:meth:`reset_capture`); backward keeps what it needs. A subclass implements
    :meth:`side_forward` and, if it captures other than with :meth:`tap_blocks`,
    :meth:`reset_capture`.

    :meth:`plan` records the host's output layout for :func:`add_to_output`: ``self.prefix``
    (leading non-patch tokens) and ``self.out_type``.

    Examples:
        >>> class MeanSide(SideNetworkMethod):  # adds a linear map of the mean block output
        ...     def inject(self, anatomy):
        ...         self.tap_blocks(anatomy)
        ...         dim = anatomy.blocks[0].dim
        ...         self.head = self.attach_root(anatomy, 'head', nn.Linear(dim, dim))
        ...
        ...     def side_forward(self):
        ...         return self.head(torch.stack(list(self.taps.outputs.values())).mean(0))
    """
    taps: Optional[BlockTaps] = None

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.prefix = anatomy.num_prefix_tokens()
        self.out_type = host_out_type(anatomy)

    def tap_blocks(self, anatomy: Anatomy) -> BlockTaps:
        """Record the first block's input and every block's output on ``self.taps``
        (detached when the method ``DETACHES_BACKBONE``)."""
        self.taps = BlockTaps(anatomy, self.hook, detach=self.DETACHES_BACKBONE)
        return self.taps

    def reset_capture(self) -> None:
        """Drop what the last forward captured (default: ``self.taps``)."""
        if self.taps is not None:
            self.taps.reset()

    def side_forward(self) -> Any:
        """The side network's result from the captured tensors (:meth:`add_back`'s input)."""
        raise NotImplementedError(f'{self.name} must implement side_forward().')

    def add_back(self, output: Any, side: Any) -> Any:
        """Add the side result to the host output; default :func:`add_to_output`."""
        return add_to_output(output, side, self.prefix, self.out_type, self.name)

    def forward_context(self) -> ContextManager:
        self.reset_capture()
        return torch.no_grad() if self.DETACHES_BACKBONE else contextlib.nullcontext()

    def transform_output(self, output: Any) -> Any:
        try:
            return self.add_back(output, self.side_forward())
        finally:
            self.reset_capture()  # drop the references; backward keeps what it needs
