"""An optimizer-wrapper constructor that knows which parameters a PETL method trains."""
import contextlib
import logging
from typing import Dict, Iterator, List, Optional, Set

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS
from ..utils import find_petl_backbone, unwrap


class _DropLines(logging.Filter):
    """Drop the per-parameter lines the host constructor prints for frozen / PETL params."""

    def __init__(self, petl_names: Set[str]) -> None:
        super().__init__()
        self.petl_names = petl_names

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if 'is skipped since its requires_grad=False' in msg:
            return False
        if msg.startswith('paramwise_options -- '):
            return msg[len('paramwise_options -- '):].split(':', 1)[0] not in self.petl_names
        return True


@contextlib.contextmanager
def _quiet(petl_names: Set[str]) -> Iterator[None]:
    logger = MMLogger.get_current_instance()
    drop = _DropLines(petl_names)
    targets = [logger] + list(logger.handlers)
    for target in targets:
        target.addFilter(drop)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(drop)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PETLOptimWrapperConstructor:
    """Build param groups from trainable parameters only, with separate rules for PETL ones.

    The host toolbox's constructor (``host_constructor``, default mmengine's) still builds the
    groups, so its ``paramwise_cfg`` (``custom_keys``, ``norm_decay_mult``, mmaction2's
    ``backbone`` lr_mult ...) applies to the parameters it was written for. Then:

    * frozen parameters are left out, with one summary line instead of one warning each;
    * *PETL parameters* (what the method trains in the backbone, for any method but Full) get
      the optimizer defaults times ``paramwise_cfg.petl`` (``lr_mult``, ``decay_mult``), not
      the host's backbone rules: a ``'norm'`` decay rule or a ``backbone`` lr_mult of 0.1 must
      not silently hit adapters. The host rules that would have applied are listed in the log.

    Args:
        optim_wrapper_cfg: The ``optim_wrapper`` config.
        paramwise_cfg: Host paramwise options, plus ``petl=dict(lr_mult=1., decay_mult=1.,
            apply_host_rules=False)`` and ``host_constructor`` (a registered constructor name).

    Examples:
        >>> optim_wrapper = dict(
        ...     constructor='vpetl_mm.PETLOptimWrapperConstructor',
        ...     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        ...     paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)},
        ...                        petl=dict(lr_mult=1., decay_mult=1.)))
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        self.petl_cfg = dict(lr_mult=1., decay_mult=1., apply_host_rules=False)
        unknown = set(paramwise_cfg.get('petl', {})) - set(self.petl_cfg)
        if unknown:
            raise ValueError(f'Unknown paramwise_cfg.petl option(s) {sorted(unknown)}; '
                             f'allowed: {sorted(self.petl_cfg)}.')
        self.petl_cfg.update(paramwise_cfg.pop('petl', {}))
        host = paramwise_cfg.pop('host_constructor', 'DefaultOptimWrapperConstructor')
        self.host = ROOT_CONSTRUCTORS.build(
            dict(type=host, optim_wrapper_cfg=optim_wrapper_cfg, paramwise_cfg=paramwise_cfg))
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)

    def __call__(self, model: nn.Module):
        model = unwrap(model)
        names = {id(p): n for n, p in model.named_parameters()}
        petl_ids = self._petl_param_ids(model)
        groups: List[Dict] = []
        with _quiet({names[i] for i in petl_ids}):
            self.host.add_params(groups, model)
        groups = [g for g in groups if all(p.requires_grad for p in g['params'])]
        grouped = {id(p) for g in groups for p in g['params']}
        # Parameters the host constructor never saw (it may walk only part of the model).
        groups += [{'params': [p]} for p in model.parameters()
                   if p.requires_grad and id(p) not in grouped]
        self._apply_petl_rules(groups, petl_ids, names)
        frozen = sum(1 for p in model.parameters() if not p.requires_grad)
        print_log(f'PETLOptimWrapperConstructor: {len(groups)} trainable tensors in the optimizer'
                  f', {frozen} frozen tensors left out.', logger='current')
        cfg = dict(self.optim_wrapper_cfg)
        cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = dict(cfg.pop('optimizer'))
        optimizer_cfg['params'] = groups
        cfg.pop('paramwise_cfg', None)
        cfg.pop('constructor', None)
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(cfg, default_args=dict(optimizer=optimizer))

    @staticmethod
    def _petl_param_ids(model: nn.Module) -> Set[int]:
        wrapper = find_petl_backbone(model)
        if wrapper is None or any(m.TRAINS_ALL for m in wrapper.methods):
            return set()
        return {id(p) for n, p in wrapper.backbone.named_parameters()
                if n in wrapper.trainable_names}

    def _apply_petl_rules(self, groups: List[Dict], petl_ids: Set[int],
                          names: Dict[int, str]) -> None:
        if self.petl_cfg['apply_host_rules'] or not petl_ids:
            return
        base_lr = self.host.base_lr
        base_wd = self.host.base_wd
        bypassed: Dict[str, int] = {}
        for group in groups:
            param = group['params'][0]
            if id(param) not in petl_ids:
                continue
            changed = [k for k in group if k != 'params']
            if changed:
                key = ', '.join(f'{k}={group[k]}' for k in changed)
                bypassed[key] = bypassed.get(key, 0) + 1
            for key in changed:
                del group[key]
            if self.petl_cfg['lr_mult'] != 1.:
                group['lr'] = base_lr * self.petl_cfg['lr_mult']
            if base_wd is not None and self.petl_cfg['decay_mult'] != 1.:
                group['weight_decay'] = base_wd * self.petl_cfg['decay_mult']
        if bypassed:
            detail = '; '.join(f'{v} tensors would get {k}' for k, v in bypassed.items())
            print_log('PETLOptimWrapperConstructor: host paramwise rules were NOT applied to '
                      f'PETL parameters ({detail}). PETL parameters use lr_mult='
                      f'{self.petl_cfg["lr_mult"]}, decay_mult={self.petl_cfg["decay_mult"]} '
                      '(set paramwise_cfg.petl=dict(...) to change, or apply_host_rules=True).',
                      logger='current', level=logging.WARNING)
