"""The one path by which a host backbone loads pretrained weights it cannot load natively.

Each :class:`~vpetl_mm.models.profiles.BackboneProfile` names, in its ``weights`` field, a
:class:`HostWeights` subclass (or None: the host loads as it does without vpetl_mm).
``PETLBackbone`` instantiates it on the host it builds, before the load reporter, so every load
report describes converted (host-named) keys. A :class:`HostWeights` does at most two things:

* ``converter``: a class whose instance registers a ``load_state_dict`` pre-hook on the host and
  maps any known checkpoint layout to host names, whatever the route (``init_cfg``, Runner
  ``load_from``, a direct ``load_state_dict``);
* :meth:`HostWeights.load_pretrained`: where the host's own ``Pretrained`` init cannot read the
  files (Google ``.npz``, pickles refused weights-only, mmdet's prefix handling), the host's
  ``init_weights`` on this instance (the class is untouched) takes the ``Pretrained`` entry out
  of ``init_cfg``, runs the host's own init on the rest, then calls ``load_pretrained``.

Examples:
    >>> class MyViTWeights(HostWeights):
    ...     converter = MyKeyConverter          # renames the file's keys to the host's
    ...     def accepts(self, cfg):             # Pretrained entries this class loads itself
    ...         return cfg['checkpoint'].endswith('.safetensors')
    ...     def load_pretrained(self, cfg):
    ...         self.backbone.load_state_dict(load_file(cfg['checkpoint']), strict=False)
    >>> register_profile(BackboneProfile(name='my.ViT', ..., weights=MyViTWeights))
"""
import contextlib
from collections import defaultdict
from typing import Iterator, Optional, Tuple

import torch.nn as nn
from mmengine.model.weight_init import PretrainedInit

_PRETRAINED = ('Pretrained', PretrainedInit)


def split_init_cfg(host: nn.Module) -> Tuple[Optional[dict], Optional[list]]:
    """The ``Pretrained`` init the host would run, and its other init_cfg entries (or None).

    A host that takes ``pretrained=`` (mmaction2 ``SwinTransformer3D`` with
    ``pretrained2d=False``) turns it into a Pretrained init that wins over ``init_cfg``, as the
    host does itself.

    Examples:
        >>> host.init_cfg = [dict(type='Pretrained', checkpoint='a.pth'), dict(type='Kaiming')]
        >>> split_init_cfg(host)
        ({'type': 'Pretrained', 'checkpoint': 'a.pth'}, [{'type': 'Kaiming'}])
    """
    cfgs = host.init_cfg if isinstance(host.init_cfg, list) else [host.init_cfg]
    others = [c for c in cfgs if c and c.get('type') not in _PRETRAINED] or None
    found = [dict(c) for c in cfgs if c and c.get('type') in _PRETRAINED]
    if getattr(host, 'pretrained', None) and not getattr(host, 'pretrained2d', False):
        found.append(dict(type='Pretrained', checkpoint=host.pretrained))
    return (found[-1] if found else None), others


@contextlib.contextmanager
def _top_level_init_info(host: nn.Module) -> Iterator[None]:
    """Act as mmengine's top-level ``BaseModule.init_weights``: collect the init log of every
    parameter, dump it at the end, leave no bookkeeping behind (errors included)."""
    if hasattr(host, '_params_init_info'):  # a parent module's init_weights collects it
        yield
        return
    info = host._params_init_info = defaultdict(dict)
    for param in host.parameters():
        info[param].update(init_info=f'not changed by {type(host).__name__}.init_weights',
                           tmp_mean_value=param.data.mean().cpu())
    for module in host.modules():
        module._params_init_info = info
    try:
        yield
        host._dump_init_info()
    finally:
        for module in host.modules():
            del module._params_init_info


@contextlib.contextmanager
def _attributes(obj: object, **values) -> Iterator[None]:
    """Set attributes of ``obj`` for the ``with`` body; restore them afterwards, errors included."""
    saved = {name: getattr(obj, name) for name in values}
    for name, value in values.items():
        setattr(obj, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(obj, name, value)


class HostWeights:
    """Pretrained-weight support of one host family, installed on one built host.

    Args:
        backbone: The host backbone (the module ``PETLBackbone`` wraps).

    Attributes:
        converter: A class taking the host, whose instance registers the key-mapping
            ``load_state_dict`` pre-hook (None: keys load as they are).
        host_init_first: Run the host's own init (without Pretrained) before
            :meth:`load_pretrained`; False where the host's Pretrained branch replaces its
            random init (mmdet/mmseg Swin).
        converter_hook: The installed converter instance, or None.

    Examples:
        >>> weights = GoogleViTNpzLoader(host)  # what PETLBackbone does for its profile
        >>> host.init_weights()  # init_cfg=dict(type='Pretrained', checkpoint='ViT-B_16.npz')
    """
    converter: Optional[type] = None
    host_init_first = True

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        self.converter_hook = self.converter(backbone) if self.converter else None
        if type(self).load_pretrained is not HostWeights.load_pretrained:
            backbone.init_weights = self.init_weights  # this instance only

    def accepts(self, cfg: dict) -> bool:
        """Whether :meth:`load_pretrained` loads this Pretrained entry (else the host's own init
        runs unchanged). May raise ``ValueError`` for an entry it accepts but cannot load."""
        return True

    def host_options(self) -> dict:
        """Host attributes to set while the host's own init runs (restored afterwards)."""
        return {}

    def load_pretrained(self, cfg: dict) -> None:
        """Load the Pretrained entry ``cfg`` (``checkpoint``, ``prefix`` ...) into the host."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """The host's ``init_weights``: its own init minus Pretrained, then
        :meth:`load_pretrained`; the host's unchanged where no Pretrained entry is accepted."""
        host = self.backbone
        cfg, others = split_init_cfg(host)
        if cfg is None or host._is_init or not self.accepts(cfg):
            return type(host).init_weights(host)  # random init, other files, a repeated call
        if not self.host_init_first:
            return self.load_pretrained(cfg)
        with _top_level_init_info(host), _attributes(host, init_cfg=others,
                                                     **self.host_options()):
            type(host).init_weights(host)
            self.load_pretrained(cfg)
