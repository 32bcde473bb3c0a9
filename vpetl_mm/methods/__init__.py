"""PETL methods: one small module each, registered once in ``PETL_METHODS``."""
from .adapter import Adapter
from .adapter_plus import AdapterPlus
from .adaptformer import AdaptFormer
from .bapat import BAPAT
from .base import BasePETLMethod, Injection
from .bitfit import BitFit
from .dora import DoRA
from .dtl import DTL
from .e3va import E3VA
from .fact import FacT
from .frozen import Frozen
from .hst import HST
from .hydra import Hydra
from .full import Full
from .glora import GLoRA
from .gps import GPS
from .ln_tune import LNTune
from .last import LAST
from .lora import LoRA
from .lorand import LoRand
from .lst import LST
from .mona import Mona
from .noah import NOAH
from .pace import PACE
from .partial import Partial
from .peft_bridge import Peft
from .prefix import PrefixTuning
from .repadapter import RepAdapter
from .sct import SCT
from .snf import SNF
from .ssf import SSF
from .utuning import UTuning
from .vpt import VPT

__all__ = ['BasePETLMethod', 'Injection', 'Full', 'Frozen', 'BitFit', 'LNTune', 'Partial',
           'LoRA', 'Adapter', 'AdaptFormer', 'LoRand', 'Mona', 'E3VA', 'BAPAT',
           'PrefixTuning', 'RepAdapter', 'SSF', 'Hydra', 'FacT', 'VPT', 'DTL', 'SCT', 'GPS',
           'UTuning', 'SNF', 'NOAH', 'Peft',
           'LST', 'LAST', 'HST']
__all__ += ['DoRA', 'GLoRA', 'AdapterPlus', 'PACE']  # methods after V-PETL Bench (2024)
