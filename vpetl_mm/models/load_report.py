"""Report what every load into a wrapped backbone actually loaded.

mm weight loading is non-strict, so a renamed or mistyped key fails silently. A pre-hook on the
host backbone sees each state dict offered to it (pretrained ``init_cfg``, ``load_from``,
``--resume``) and logs how many host tensors and PETL tensors it covers.
"""
import contextlib
import logging
from typing import Dict, Iterator, Optional, Set

import torch.nn as nn
from mmengine.logging import print_log

from ..compat.keys import preview


class LoadReporter:
    """Log a load report for every state dict loaded into ``backbone``.

    Args:
        backbone: The host backbone (names are relative to it).
        injected: Injected PETL module path -> module.
        trainable: Names of the trainable backbone parameters.
    """

    def __init__(self, backbone: nn.Module, injected: Dict[str, nn.Module],
                 trainable: Set[str]) -> None:
        self.backbone = backbone
        self.petl_keys = {f'{path}.{k}' for path, mod in injected.items()
                          for k in mod.state_dict().keys()}
        self.trainable = set(trainable)
        self.context: Optional[str] = None
        self.loads_seen = 0
        self.last: Optional[dict] = None
        backbone._register_load_state_dict_pre_hook(self._hook)

    @contextlib.contextmanager
    def during(self, context: str) -> Iterator[None]:
        self.context, self.loads_seen = context, 0
        try:
            yield
        finally:
            self.context = None

    def _hook(self, state_dict, prefix, *args) -> None:
        offered = {k[len(prefix):] for k in state_dict if k.startswith(prefix)}
        expected = set(self.backbone.state_dict().keys())
        host = expected - self.petl_keys
        report = dict(
            context=self.context or 'checkpoint load',
            host_loaded=sorted(offered & host), host_missing=sorted(host - offered),
            petl_loaded=sorted(offered & self.petl_keys),
            petl_missing=sorted(self.petl_keys - offered),
            unexpected=sorted(offered - expected))
        self.loads_seen += 1
        self.last = report
        # An adapter-only checkpoint (our checkpoint hook) offers no frozen host tensor: those
        # come from the pretrained init, so their absence is expected. A pretrained init that
        # misses host tensors, or any load that misses *trainable* ones, is worth a warning.
        frozen = host - self.trainable - _buffers(self.backbone)
        own = self.petl_keys | self.trainable  # what an adapter-only checkpoint holds
        adapter_only = (self.context != 'host init_weights' and bool(frozen)
                        and not offered & frozen and (bool(offered & own) or not own))
        report['adapter_only'] = adapter_only
        missing = set(report['host_missing']) - (frozen if adapter_only else set())
        level = logging.WARNING if missing else logging.INFO
        if not offered & expected and own:
            # e.g. Microsoft's {'model': ...} Swin file given as load_from: mmengine only
            # unpacks 'state_dict', so the backbone is offered nothing it knows
            print_log(f'Nothing loaded into the backbone ({report["context"]}): the checkpoint '
                      'holds no tensor of it. A pretrained file whose '
                      "weights sit under another key (e.g. {'model': ...}) belongs in the host "
                      "backbone's init_cfg=dict(type='Pretrained', checkpoint=...), not in "
                      'load_from.', logger='current', level=logging.WARNING)
        lines = [f'Load report ({report["context"]}): {len(report["host_loaded"])}/{len(host)} '
                 f'host tensors and {len(report["petl_loaded"])}/{len(self.petl_keys)} PETL '
                 'tensors loaded' + (' (adapter-only checkpoint: the frozen host tensors keep '
                                     'their pretrained values)' if adapter_only else '') + '.']
        if missing:
            lines.append(f'  host tensors NOT in the checkpoint: {preview(missing, limit=8)}')
        if report['petl_missing']:
            lines.append(f'  PETL tensors not in the checkpoint (keep their init): '
                         f'{len(report["petl_missing"])}')
        if report['unexpected']:
            lines.append(f'  unexpected keys ignored: {preview(set(report["unexpected"]), limit=8)}')
        print_log('\n'.join(lines), logger='current', level=level)


def _buffers(module: nn.Module) -> Set[str]:
    return {n for n, _ in module.named_buffers()}
