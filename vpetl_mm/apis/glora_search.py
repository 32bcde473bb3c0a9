"""GLoRA's evolutionary search over the subnets of a trained supernet (``tools/glora_search.py``).

GLoRA's step 2 (Arnav0400/ViT-Slim@0fed674833f70f98b19678963ae37c070c987215,
``GLoRA/evolution.py`` and ``GLoRA/evolution_utils.py``, itself AutoFormer's search): a
population of random subnets within the parameter limit, each scored by the trained supernet
running that subnet on the validation data; then per generation the ``select`` best seen so far
breed ``mutation`` mutants (each layer's each tensor re-drawn with probability ``m_prob``) and
``crossover`` crosses (each layer's each tensor from one parent or the other), and random
subnets fill the population up again. The loop is NOAH's (:class:`~.noah_search.EvolutionSearch`,
the same AutoFormer scheme); this module gives GLoRA's subnet space and defaults.

Defaults (:func:`glora_settings`, ``GLoRA/evolution.py``'s arguments): population 50
(``--population-num``), select 10 (``--select-num``), mutation 25 (``--mutation-num``),
crossover 25 (``--crossover-num``), m_prob 0.2 (``--m_prob``), 20 generations
(``--max-epochs``), parameter limit 1.0M (``--param-limits``), seed 1 (``--seed``). One
difference, as in NOAH's search: the last generation is ranked too (ViT-Slim evaluates a 21st
population and never ranks it, so 20 ranked generations are the same search).
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from ..methods.glora import CHOICES, GLoRA, Subnet
from .noah_search import EvolutionSearch, SearchSettings

Key = Tuple[Tuple[str, ...], ...]


def glora_settings(**overrides) -> SearchSettings:
    """GLoRA's search settings (ViT-Slim's ``GLoRA/evolution.py`` defaults), ``overrides``
    applied; ``param_limit`` in parameters (1,000,000: ``--param-limits 1.00``).

    Examples:
        >>> glora_settings(population=4, generations=2).select
        10
    """
    values = dict(population=50, select=10, mutation=25, crossover=25, generations=20,
                  m_prob=0.2, param_limit=1_000_000, min_param_limit=0, seed=1)
    values.update(overrides)
    return SearchSettings(**values)


class GLoRAEvolutionSearch(EvolutionSearch):
    """Search the subnets of a GLoRA supernet for the best ``evaluate`` score.

    Args:
        method: The GLoRA method built with ``supernet=True`` (its ``sample``, ``count``).
        evaluate: Subnet -> score (top-1 on the validation data); higher is better.
        settings: :func:`glora_settings` (``s_prob`` is NOAH's and unused here).
        log: Called with one line per event.

    Examples:
        >>> search = GLoRAEvolutionSearch(method, evaluate, glora_settings(population=4,
        ...                               select=2, mutation=1, crossover=1, generations=2))
        >>> best, score, params = search.run()
    """

    @staticmethod
    def key(subnet: Subnet) -> Key:
        return tuple(tuple(layer[n] for n in CHOICES) for layer in subnet)

    def mutate(self, parent: Subnet) -> Subnet:
        """Each layer's each tensor re-drawn with probability ``m_prob`` (ViT-Slim's
        ``get_mutation``)."""
        p = self.settings.m_prob
        child: List[Dict[str, str]] = []
        for layer in parent:
            child.append({n: self.rng.choice(CHOICES[n]) if self.rng.random() < p else layer[n]
                          for n in CHOICES})
        return child

    def cross(self, a: Subnet, b: Subnet) -> Subnet:
        """Each layer's each tensor from one parent or the other (ViT-Slim's
        ``get_crossover``)."""
        return [{n: self.rng.choice((la[n], lb[n])) for n in CHOICES} for la, lb in zip(a, b)]


def subnet_state(model: nn.Module, method: GLoRA, state: Dict[str, torch.Tensor],
                 subnet: Subnet) -> Dict[str, torch.Tensor]:
    """``state`` (a checkpoint of the supernet ``model``) as the fixed ``subnet`` model holds it:
    each GLoRA layer's tensors sliced to its choices (:meth:`GLoRALinear.slice`), unused ones
    dropped; every other tensor as it is.

    Examples:
        >>> state = subnet_state(runner.model, method, checkpoint['state_dict'], best)
    """
    keys = {id(v): k for k, v in model.state_dict(keep_vars=True).items()}
    state = dict(state)
    for layer, choices in zip(method.layers, subnet):
        for factor, param in layer.factors.items():
            key = keys[id(param)]
            sliced = layer.slice(factor, state.pop(key), choices)
            if sliced is not None:
                state[key] = sliced
    return state
