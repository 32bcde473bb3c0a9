"""The PETL backbone wrapper and the backbone anatomy it relies on."""
from .anatomy import Anatomy, BlockRef
from .data_preprocessor import NORMALIZATIONS, NamedNormClsDataPreprocessor
from .petl_backbone import PETLBackbone
from .profiles import PROFILES, BackboneProfile, find_profile, register_profile
from .token_pool import TokenPool

__all__ = ['Anatomy', 'BlockRef', 'NORMALIZATIONS', 'NamedNormClsDataPreprocessor', 'PETLBackbone',
           'PROFILES', 'BackboneProfile', 'TokenPool', 'find_profile', 'register_profile']
