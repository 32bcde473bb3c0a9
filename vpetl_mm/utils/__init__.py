from .params import count_params, find_petl_backbone, petl_tree, unwrap

__all__ = ['count_params', 'find_petl_backbone', 'petl_tree', 'unwrap']
