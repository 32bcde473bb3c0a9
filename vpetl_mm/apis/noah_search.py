"""NOAH's evolutionary search over the subnets of a trained supernet (``tools/noah_search.py``).

The search follows NOAH's ``evolution.py`` (itself AutoFormer's): a population of random
subnets within the parameter limit, each scored by the top-1 accuracy of the trained supernet
running that subnet on the validation split; then per generation the ``select`` best seen so
far breed ``mutation`` mutants and ``crossover`` crosses, and random subnets fill the
population up again. Its defaults are NOAH's VTAB settings: population 50, select 10,
mutation 25, crossover 25, mutation probability 0.2, depth-resampling probability 0.4 and 15
generations (``--max-epochs=15`` of its VTAB search script).

Two choices differ from NOAH's code, both documented in docs/image.md: a mutation also
re-draws each active layer's width with probability ``m_prob`` (AutoFormer's per-layer
mutation; NOAH's only changes depths, so most of its mutants repeat their parent), and the
last generation is ranked too (NOAH evaluates it and drops it).
"""
import random
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

from ..methods.noah import KINDS, NOAH, Subnet

Key = Tuple[Tuple[int, ...], ...]


@dataclass
class SearchSettings:
    """The evolution's sizes and probabilities (defaults: NOAH's VTAB search).

    Args:
        population: Subnets evaluated per generation.
        select: The best subnets (over all generations so far) that breed.
        mutation: Mutants per generation.
        crossover: Crosses per generation.
        generations: Generations.
        m_prob: Probability to mutate a kind's depth, and (independently) each active layer's
            width.
        s_prob: Given a depth mutation, the probability to actually re-draw the depth.
        param_limit: Largest subnet allowed, in parameters (None: no limit).
        min_param_limit: Smallest subnet allowed, in parameters.
        seed: Seed of the search's random draws.
        max_tries: Draws per wanted subnet before giving up (a tight limit can leave too few).
    """
    population: int = 50
    select: int = 10
    mutation: int = 25
    crossover: int = 25
    generations: int = 15
    m_prob: float = 0.2
    s_prob: float = 0.4
    param_limit: Optional[int] = None
    min_param_limit: int = 0
    seed: int = 0
    max_tries: int = 10

    def check(self) -> None:
        if self.population < 1 or self.generations < 1:
            raise ValueError('population and generations must be >= 1.')
        if not 1 <= self.select <= self.population:
            raise ValueError(f'select={self.select} must lie in 1..population '
                             f'({self.population}).')
        if self.mutation < 0 or self.crossover < 0 or \
                self.mutation + self.crossover > self.population:
            raise ValueError(f'mutation ({self.mutation}) + crossover ({self.crossover}) must '
                             f'not exceed population ({self.population}).')


def key(subnet: Subnet) -> Key:
    return tuple(tuple(subnet[k]) for k in KINDS)


def depth_of(widths: List[int]) -> int:
    """Layers before the first without the module (NOAH's subnets fill a prefix of layers)."""
    return next((i for i, w in enumerate(widths) if not w), len(widths))


class EvolutionSearch:
    """Search the subnets of ``method`` (a NOAH supernet) for the best ``evaluate`` score.

    Args:
        method: The NOAH method (its ``choices``, ``depths``, ``sample`` and ``count``).
        evaluate: Subnet -> score (top-1 on the validation split); higher is better.
        settings: The evolution's settings.
        log: Called with one line per event.
    """

    key = staticmethod(key)  # a subclass over another search space gives its own

    def __init__(self, method: NOAH, evaluate: Callable[[Subnet], float],
                 settings: SearchSettings, log: Callable[[str], None] = print) -> None:
        settings.check()
        self.method, self.evaluate, self.settings, self.log = method, evaluate, settings, log
        self.rng = random.Random(settings.seed)
        self.params: Dict[Key, int] = {}
        self.scores: Dict[Key, float] = {}
        self.history: List[dict] = []
        self.top: List[Subnet] = []
        self.generation = 0

    def _admit(self, subnet: Subnet) -> bool:
        """Evaluate a new subnet within the limits; False if seen before or out of limits."""
        k = self.key(subnet)
        if k in self.scores:
            return False
        if k not in self.params:
            self.params[k] = self.method.count(subnet)
        s, n = self.settings, self.params[k]
        if (s.param_limit is not None and n > s.param_limit) or n < s.min_param_limit:
            return False
        self.scores[k] = score = float(self.evaluate(subnet))
        self.history.append(dict(generation=self.generation, subnet=subnet, params=n,
                                 score=score))
        self.log(f'generation {self.generation}: {n:,} params, score {score:.4f}, {subnet}')
        return True

    def _collect(self, draw: Callable[[], Subnet], wanted: int, into: List[Subnet]) -> None:
        for _ in range(wanted * self.settings.max_tries):
            if len(into) >= wanted:
                return
            subnet = draw()
            if self._admit(subnet):
                into.append(subnet)
        if len(into) < wanted:
            self.log(f'generation {self.generation}: only {len(into)} of {wanted} new subnets '
                     'within the limits after many draws (a tight limit or a small space)')

    def mutate(self, parent: Subnet) -> Subnet:
        s, m = self.settings, self.method
        child = {}
        for kind in KINDS:
            widths = list(parent[kind])
            if self.rng.random() < s.m_prob:  # NOAH's: re-draw the depth (prob. s_prob)
                depth = depth_of(widths)
                new = self.rng.choice(m.depths) if self.rng.random() < s.s_prob else depth
                grown = [self.rng.choice(m.choices[kind]) for _ in range(depth, new)]
                widths = (widths[:depth] + grown)[:new] + [0] * (m.num_layers - new)
            for i in range(depth_of(widths)):  # AutoFormer's: re-draw a layer's width
                if self.rng.random() < s.m_prob:
                    widths[i] = self.rng.choice(m.choices[kind])
            child[kind] = widths
        return child

    def cross(self, a: Subnet, b: Subnet) -> Subnet:
        """Each kind's whole per-layer list from one parent or the other (NOAH's crossover)."""
        return {kind: list(self.rng.choice((a, b))[kind]) for kind in KINDS}

    def _rank(self, candidates: List[Subnet]) -> None:
        pool = {self.key(c): c for c in self.top + candidates}
        # best score first; ties: the smaller subnet
        order = sorted(pool, key=lambda k: (-self.scores[k], self.params[k]))
        self.top = [pool[k] for k in order[:self.settings.select]]

    def run(self) -> Tuple[Subnet, float, int]:
        """Run every generation; returns the best subnet, its score and its parameter count."""
        s = self.settings
        candidates: List[Subnet] = []
        self._collect(lambda: self.method.sample(self.rng), s.population, candidates)
        while True:
            self._rank(candidates)
            if not self.top:
                raise RuntimeError('No subnet fits the parameter limits '
                                   f'[{s.min_param_limit:,}, {s.param_limit}]; widen them.')
            best = self.top[0]
            score, params = self.scores[self.key(best)], self.params[self.key(best)]
            self.log(f'generation {self.generation}: best score {score:.4f} '
                     f'({params:,} params) {best}')
            self.generation += 1
            if self.generation >= s.generations:
                return best, score, params
            candidates = []
            self._collect(lambda: self.mutate(self.rng.choice(self.top)), s.mutation, candidates)
            mutants = len(candidates)
            self._collect(lambda: self.cross(self.rng.choice(self.top), self.rng.choice(self.top)),
                          mutants + s.crossover, candidates)
            self._collect(lambda: self.method.sample(self.rng), s.population, candidates)

    def summary(self) -> dict:
        best = self.top[0] if self.top else None
        return dict(settings=asdict(self.settings), evaluated=len(self.history),
                    best=dict(subnet=best, score=self.scores[self.key(best)],
                              params=self.params[self.key(best)]) if best else None,
                    history=self.history)
