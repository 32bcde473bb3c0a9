"""Start-of-training report: what trains, where modules were injected, and the optimizer check."""
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..registry import HOOKS
from ..utils import count_params, dump_json_atomic, find_petl_backbone, petl_tree, unwrap


@HOOKS.register_module()
class PETLReportHook(Hook):
    """Log and save the PETL report before training starts.

    Logs trainable parameters per top-level group (backbone / neck / head ...), the backbone
    count with the head excluded (the published ``Params`` and the PPT input) and a tree of the
    injected modules; checks that no frozen parameter reached the optimizer. The same numbers
    are written to ``<work_dir>/petl_report.json``.

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.PETLReportHook')]
    """
    priority = 'VERY_LOW'  # after the optimizer and weights are final

    def before_train(self, runner) -> None:
        model = unwrap(runner.model)
        counts = count_params(model)
        wrapper = find_petl_backbone(model)
        lines = ['PETL report',
                 f'  backbone trainable (head excluded, = Params, PPT input): '
                 f'{counts["backbone_trainable"]:,}',
                 f'  all trainable: {counts["trainable"]:,} of {counts["total"]:,} '
                 f'({100. * counts["trainable"] / max(counts["total"], 1):.2f}%)']
        for group, (trainable, total) in counts['groups'].items():
            lines.append(f'    {group:<16} {trainable:>14,} / {total:,}')
        if wrapper is not None:
            lines.append(petl_tree(wrapper))
        print_log('\n'.join(lines), logger='current')
        self._check_optimizer(runner, model)
        report = dict(counts, method=[repr(m) for m in wrapper.methods] if wrapper else None,
                      profile=wrapper.profile.name if wrapper else None)
        dump_json_atomic(report, osp.join(runner.work_dir, 'petl_report.json'))

    @staticmethod
    def _check_optimizer(runner, model) -> None:
        optim_wrapper = getattr(runner, 'optim_wrapper', None)
        optimizer: Optional[object] = getattr(optim_wrapper, 'optimizer', None)
        if optimizer is None:
            return
        in_optim = {id(p) for g in optimizer.param_groups for p in g['params']}
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad and id(p) in in_optim]
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in in_optim]
        if missing:
            raise RuntimeError(f'{len(missing)} trainable parameters are not in the optimizer '
                               f'(e.g. {missing[:3]}): were modules added after the optimizer '
                               'was built? Inject PETL modules with PETLBackbone at build time.')
        if frozen:
            print_log(f'{len(frozen)} frozen parameters are in the optimizer (harmless, but '
                      'use constructor="vpetl_mm.PETLOptimWrapperConstructor" to skip them).',
                      logger='current')
