"""Helpers over built models (parameter counts, finding the ``PETLBackbone``).

Layering: ``utils`` sits above :mod:`vpetl_mm.models` and imports it; ``models``, ``methods`` and
``compat`` never import ``utils``, so no import cycle can pass through it.
"""
from .files import dump_json_atomic
from .params import count_params, find_petl_backbone, merge_and_unload, petl_tree, unwrap

__all__ = ['count_params', 'dump_json_atomic', 'find_petl_backbone', 'merge_and_unload', 'petl_tree', 'unwrap']
