"""Resolve a backbone profile against a built backbone: blocks, sites, dimensions."""
import fnmatch
from dataclasses import dataclass
from typing import Dict, Iterable, List

import torch.nn as nn

from .host_patches import apply_host_patch
from .profiles import BackboneProfile


@dataclass
class BlockRef:
    """One transformer block of the host backbone."""
    index: int  # position in forward order over the whole backbone
    path: str  # module path relative to the backbone, e.g. 'stages.3.blocks.1'
    module: nn.Module
    dim: int  # token width C


class Anatomy:
    """The blocks and abstract sites of one built backbone.

    Args:
        backbone: The host backbone (already built).
        profile: Its :class:`~vpetl_mm.models.profiles.BackboneProfile`.
    """

    def __init__(self, backbone: nn.Module, profile: BackboneProfile) -> None:
        self.backbone = backbone
        self.profile = profile
        modules: Dict[str, nn.Module] = dict(backbone.named_modules())
        depth = profile.blocks.count('.') + 1
        paths = [p for p in modules
                 if p.count('.') + 1 == depth and fnmatch.fnmatchcase(p, profile.blocks)]
        if not paths:
            raise ValueError(f'Profile {profile.name!r} found no blocks matching '
                             f'{profile.blocks!r} in {type(backbone).__name__}.')
        self.blocks: List[BlockRef] = []
        for index, path in enumerate(paths):  # named_modules() yields forward (definition) order
            block = modules[path]
            self.blocks.append(BlockRef(index, path, block, self._dim(block)))
        for site, patch in profile.patches.items():
            for block in self.blocks:
                apply_host_patch(block.module if site == 'block' else self.site(block, site),
                                 patch)

    def _dim(self, block: nn.Module) -> int:
        for site in ('norm1', 'norm2'):  # a CNN block (ConvNeXt) has only the norm2 site
            norm = self._get(block, self.profile.sites.get(site, ''))
            if norm is not None and hasattr(norm, 'normalized_shape'):
                return int(norm.normalized_shape[0])
        linear = self._get(block, self.profile.sites.get('qkv', self.profile.sites.get('fc1', '')))
        return int(linear.in_features)

    @staticmethod
    def _get(module: nn.Module, path: str):
        for part in filter(None, path.split('.')):
            module = getattr(module, part, None)
            if module is None:
                return None
        return module

    def site(self, block: BlockRef, site: str) -> nn.Module:
        """The host module at abstract ``site`` of ``block``."""
        path = self.profile.sites.get(site)
        module = self._get(block.module, path) if path else None
        if module is None:
            raise ValueError(f'Backbone profile {self.profile.name!r} has no site {site!r} '
                             f'(looked for {block.path}.{path}).')
        return module

    def site_path(self, block: BlockRef, site: str) -> str:
        return f'{block.path}.{self.profile.sites[site]}'

    def require_sites(self, sites: Iterable[str], method: str) -> None:
        missing = [s for s in sites if s not in self.profile.sites]
        if missing:
            raise ValueError(f'{method} needs the site(s) {missing}, which backbone profile '
                             f'{self.profile.name!r} does not define, so {method} is not '
                             f'supported on it. Profiles with these sites: see vpetl_mm/models/'
                             f'profiles.py.')

    def num_prefix_tokens(self) -> int:
        """Leading non-patch tokens (CLS, distillation) of a ``'sequence'`` layout."""
        count = self.profile.prefix_tokens
        if isinstance(count, str):
            count = getattr(self._get(self.backbone, self.profile.root), count)
        return int(count)

    def uses_reentrant_checkpointing(self) -> bool:
        """Whether blocks run under reentrant activation checkpointing (``with_cp``-style flags).

        Blocks whose forward is a non-reentrant host patch (``swin3d_block``) do not count:
        hooks and frozen inputs are safe there.
        """
        flags = [getattr(self.backbone, 'with_cp', False),
                 getattr(self._get(self.backbone, self.profile.root), 'grad_checkpointing', False)]
        flags += [getattr(b.module, 'with_cp', False) for b in self.blocks]
        safe = all(getattr(getattr(b.module.forward, '__func__', None), 'non_reentrant', False)
                   for b in self.blocks)
        return any(bool(f) for f in flags) and not safe
