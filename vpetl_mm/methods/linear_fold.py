"""Methods that hook one foldable layer on each host ``nn.Linear`` of their target sites."""
from typing import ClassVar, Tuple

import torch.nn as nn

from ..models.anatomy import Anatomy
from .base import BasePETLMethod


class LinearFoldMethod(BasePETLMethod):
    """Base of mergeable methods with one layer per block and target site (RepAdapter, Hydra).

    Each layer is hooked on the host ``nn.Linear`` (which needs a bias) at its site and folds
    into it, so the default :meth:`~BasePETLMethod.merge` / ``unmerge`` apply. The ``targets``
    hyper-parameter names the sites. A subclass sets ``SITE_CHOICES`` (the sites ``targets``
    may name) and ``PRE_HOOK`` (the layer's ``hook`` reads and rewrites the host's input,
    instead of its output), and implements :meth:`make_layer`.

    Examples:
        >>> class Rescale(LinearFoldMethod):
        ...     DEFAULTS = dict(targets=('fc1', ))
        ...     SITE_CHOICES = ('qkv', 'fc1')
        ...
        ...     def make_layer(self, host, site):
        ...         return OutputScale(host.out_features)  # hook, merged, merge, unmerge
    """
    MERGEABLE = True
    SITE_CHOICES: ClassVar[Tuple[str, ...]] = ()
    PRE_HOOK: ClassVar[bool] = False

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        self.require_linears(anatomy, self.site_targets(anatomy, self.SITE_CHOICES), bias=True)

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.target_sites = self.site_targets(anatomy, self.SITE_CHOICES)

    def inject(self, anatomy: Anatomy) -> None:
        self.hook_linears(anatomy, self.target_sites, self.make_layer, pre=self.PRE_HOOK)

    def make_layer(self, host: nn.Linear, site: str) -> nn.Module:
        """The layer for ``host`` (the ``nn.Linear`` at ``site``): ``hook``, ``merged``,
        ``merge(host)`` and ``unmerge(host)``."""
        raise NotImplementedError(f'{self.name} must implement make_layer().')
