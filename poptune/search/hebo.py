"""HEBO adapter (``ray.tune.search.hebo.HEBOSearch``): Heteroscedastic Evolutionary Bayesian
Optimisation (Huawei Noah's Ark), a Gaussian-process searcher that suggests in batches.

The space is a HEBO ``DesignSpace``, a dict of poptune domains, or the Tuner's
``param_space``, converted with the same value sets as the other searchers: ``uniform`` and
``randint`` are HEBO's ``num`` and ``int`` (``randint``'s upper bound exclusive),
``loguniform``/``lograndint`` are ``pow``/``pow_int``, ``choice`` is ``cat`` (by index, so
that its values come back as they were: HEBO would return the category ``3`` of
``["a", 3]`` as ``"3"``). Nested keys are
joined with ``"/"``; ``sample_from`` entries are drawn by the Tuner after the suggestion.

As in Ray, HEBO suggests ``max_concurrent`` configs at once (the first batches are its
quasi-random warm-up), and with ``max_concurrent`` trials running it waits for the whole batch
to finish before suggesting again.

Differences from Ray:

- **Quantized domains keep their value set.** Ray drops the quantization with a warning;
  here ``quniform``/``qrandint`` are searched as HEBO integers ``k`` and run as ``k * q``, and
  ``qloguniform``/``qlograndint`` are rounded to ``q`` within the bounds. HEBO is told the
  value that ran.
- **A seed without touching global state.** Ray's ``random_state_seed`` seeds numpy's and
  torch's global generators (the driver's, and again on restore). Here the searcher keeps
  generators of its own, swapped in only while HEBO runs, and seeds HEBO's Sobol warm-up
  (``scramble_seed``) from it: a seeded run suggests the same configs every time, and a
  restored searcher continues as the original would have.
- HEBO sets torch to one thread when it is imported; poptune puts the driver's setting back.
- A failed trial, or one without a finite metric, is not told to HEBO (Ray's HEBO would get
  a ``KeyError`` from a final result without the metric); bad input is a ``ValueError`` or
  ``TypeError`` naming the argument rather than an ``AssertionError``.

HEBO 0.3.6 declares ``numpy<1.25``, ``pymoo==0.6.0``, GPy and catboost. It runs with numpy 2 and
pymoo 0.6.2, and its default ``"gp"`` model needs neither GPy nor catboost, so poptune's
``hebo`` extra installs ``pymoo`` and ``disjoint-set`` and HEBO itself with ``--no-deps``
(``pip install --no-deps HEBO==0.3.6``).
"""

from __future__ import annotations

import logging
import random
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from poptune._imports import MissingDependencyError, require
from poptune._validation import bad_type, bad_value, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import (
    SearcherAdapter, ValueMap, check_seed, copy_points, numeric_range, space_domains,
)  # fmt: skip
from poptune.search._base import finite_metric
from poptune.search.sample import Categorical, Domain, Uniform
from poptune.search.variant_generator import flatten_dict, unflatten_dict

__all__ = ["HEBOSearch"]

logger = logging.getLogger(__name__)


def _hebo() -> Any:
    """The ``hebo`` package, imported with the driver's torch thread count kept."""
    if "hebo.optimizers.hebo" not in sys.modules:
        torch = require("torch", "HEBOSearch")
        threads = torch.get_num_threads()
        try:
            with warnings.catch_warnings():
                # hebo's import compiles with torch.jit.script, deprecated in torch 2.10+
                warnings.simplefilter("ignore", DeprecationWarning)
                import hebo.design_space.design_space  # noqa: F401
                import hebo.optimizers.hebo  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                f"HEBOSearch needs HEBO, which failed to import ({exc}); run: pip install "
                "'poptune[hebo]' && pip install --no-deps HEBO==0.3.6") from exc
        finally:
            torch.set_num_threads(threads)  # hebo's import sets it to 1
    return sys.modules["hebo"]


class _Post(ValueMap):
    """How a value HEBO suggests becomes the config value (and back): HEBO's categories are
    the strings ``"0"``, ``"1"``, ... (the indices)."""

    def encode(self, value: Any, where: str = "a point's value") -> Any:
        encoded = super().encode(value, where)
        return str(encoded) if self.categories is not None else encoded


def _convert_domain(name: str, domain: Domain) -> tuple[dict[str, Any], _Post | None]:
    """HEBO's parameter dict for one domain, and how to decode its values."""
    r = numeric_range(domain)
    if r is not None:
        if r.log:
            kind = "pow_int" if r.integer and r.q is None else "pow"
            post = (_Post(integer=True) if r.integer and r.q is None
                    else _Post(q=r.q, low=r.low, high=r.high, integer=r.integer))
            return {"name": name, "type": kind, "lb": r.low, "ub": r.high}, post
        if r.q is None:
            return ({"name": name, "type": "int", "lb": int(r.low), "ub": int(r.high)},
                    _Post(integer=True)) if r.integer else (
                {"name": name, "type": "num", "lb": r.low, "ub": r.high}, None)
        return ({"name": name, "type": "int", "lb": round(r.low / r.q),
                 "ub": round(r.high / r.q)}, _Post(step=r.q, integer=r.integer))
    if isinstance(domain, Categorical) and isinstance(domain.get_sampler(), Uniform):
        # by index: HEBO turns categories into strings (3 would come back as '3')
        categories = tuple(domain.categories)
        labels = [str(i) for i in range(len(categories))]
        return {"name": name, "type": "cat", "categories": labels}, _Post(categories=categories)
    raise TuneConfigError(
        f"`{name}` has domain {domain!r}, which HEBOSearch cannot search; it takes uniform, "
        "loguniform and quantized floats and integers, and choice")


class HEBOSearch(SearcherAdapter):
    """Bayesian optimisation with HEBO.

    Args:
        space: a HEBO ``DesignSpace`` or a dict of poptune domains; None: the Tuner's
            ``param_space`` is converted.
        metric: the result key to optimize.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: configs to run first.
        evaluated_rewards: the results of ``points_to_evaluate``, which are then told to HEBO
            instead of being run.
        random_state_seed: makes the search reproducible (the searcher's own generators; the
            process's global ones are left alone).
        max_concurrent: how many configs HEBO suggests at once (at least 1).
        **kwargs: passed to ``hebo.optimizers.hebo.HEBO`` (``rand_sample``, ``model_name``,
            ``scramble_seed``, ...).

    Example:
        >>> import poptune as tune
        >>> searcher = HEBOSearch(metric="loss", mode="min", random_state_seed=0)
        >>> searcher.set_search_properties(None, None, {"x": tune.uniform(-1, 1)})
        True
        >>> -1 <= searcher.suggest("t0")["x"] <= 1
        True
        >>> searcher.on_trial_complete("t0", {"loss": 0.3})
    """

    def __init__(
        self,
        space: Any = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        evaluated_rewards: list[Any] | None = None,
        random_state_seed: int | None = None,
        max_concurrent: int = 8,
        **kwargs: Any,
    ) -> None:
        hebo = _hebo()
        check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        check_seed("random_state_seed", random_state_seed)
        self._check_concurrency(max_concurrent)
        points = copy_points(points_to_evaluate)
        if evaluated_rewards is not None:
            if not isinstance(evaluated_rewards, (list, tuple)) or len(evaluated_rewards) != len(
                points
            ):
                raise bad_value("evaluated_rewards", evaluated_rewards, "a list as long as "
                                f"`points_to_evaluate` ({len(points)} points)")
            if any(finite_metric(r) is None for r in evaluated_rewards):
                raise bad_value("evaluated_rewards", evaluated_rewards, "finite numbers")
        self._space: Any = None
        self._post: dict[str, _Post] = {}
        if isinstance(space, dict):
            if space:
                self._install_space(space_domains(space, "HEBOSearch", "space"))
        elif isinstance(space, hebo.design_space.design_space.DesignSpace):
            self._space = space
        elif space is not None:
            raise bad_type("space", space, "a hebo DesignSpace, a dict of domains, or None")
        self._points = points
        self._rewards = [float(r) for r in evaluated_rewards] if evaluated_rewards else None
        self._seed = random_state_seed
        self._hebo_kwargs = dict(kwargs)
        self._max_concurrent = max_concurrent
        self._opt: Any = None
        self._rng: dict[str, Any] | None = None  # the searcher's own generator states
        self._live: dict[str, dict[str, Any]] = {}  # trial id -> the values HEBO suggested
        self._cache: list[dict[str, Any]] = []  # the rest of the last batch
        self._batch_filled = False

    @staticmethod
    def _check_concurrency(max_concurrent: Any) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or (
            max_concurrent < 1
        ):
            raise bad_value("max_concurrent", max_concurrent, "an int of at least 1")

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """HEBO's batch size becomes ``max_concurrent`` (a ``ConcurrencyLimiter``'s), as in
        Ray."""
        self._check_concurrency(max_concurrent)
        self._max_concurrent = max_concurrent
        return True

    @staticmethod
    def convert_search_space(spec: dict[str, Any]) -> Any:
        """The HEBO ``DesignSpace`` for the domains of ``spec``."""
        hebo = _hebo()
        params = [_convert_domain(n, d)[0] for n, d in space_domains(spec, "HEBOSearch").items()]
        return hebo.design_space.design_space.DesignSpace().parse(params)

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return self._space is not None

    def _parse_space(self, config: dict[str, Any]) -> dict[str, Domain]:
        return space_domains(config, "HEBOSearch")

    def _same_space(self, parsed: dict[str, Domain]) -> bool:
        return set(parsed) == set(self._space.para_names)

    def _install_space(self, parsed: dict[str, Domain]) -> None:
        hebo = _hebo()
        params, post = [], {}
        for name, domain in parsed.items():
            param, p = _convert_domain(name, domain)
            params.append(param)
            if p is not None:
                post[name] = p
        self._space = hebo.design_space.design_space.DesignSpace().parse(params)
        self._post = post

    def _objective_fixed(self) -> bool:
        return self._opt is not None

    # ----------------------------------------------------------------- the optimizer
    @contextmanager
    def _own_rng(self) -> Iterator[None]:
        """With a seed, HEBO draws from the searcher's generators, not the process's."""
        if self._seed is None:
            yield
            return
        import torch

        saved = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
        # pymoo 0.6.2 (not 0.6.0) draws HEBO's evolution from a fresh default_rng() unless seeded
        evolution: Any = sys.modules["hebo.acq_optimizers.evolution_optimizer"]
        minimize = evolution.minimize

        def seeded_minimize(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("seed", int(np.random.randint(0, 2**31 - 1)))
            return minimize(*args, **kwargs)

        evolution.minimize = seeded_minimize
        if self._rng is None:
            random.seed(self._seed)
            np.random.seed(self._seed)
            torch.random.manual_seed(self._seed)
        else:
            random.setstate(self._rng["random"])
            np.random.set_state(self._rng["numpy"])
            torch.random.set_rng_state(self._rng["torch"])
        try:
            yield
        finally:
            self._rng = {"random": random.getstate(), "numpy": np.random.get_state(),
                         "torch": torch.random.get_rng_state()}
            evolution.minimize = minimize
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.random.set_rng_state(saved[2])

    def _ensure(self) -> Any:
        if self._space is None or self._space.num_paras == 0:
            raise TuneConfigError("HEBOSearch has no search space: pass `space`, or domains "
                                  "in the Tuner's `param_space`")
        self._require_metric_mode()
        if self._opt is not None:
            return self._opt
        hebo = _hebo()
        kwargs = dict(self._hebo_kwargs)
        if self._seed is not None:
            kwargs.setdefault("scramble_seed", self._seed)
        with self._own_rng():
            self._opt = hebo.optimizers.hebo.HEBO(space=self._space, **kwargs)
        if self._rewards is not None:
            points, rewards = self._points, self._rewards
            self._points, self._rewards = [], None
            for point, reward in zip(points, rewards):
                self._observe(self._encode(flatten_dict(point)), reward)
        return self._opt

    def _sign(self) -> float:
        return -1.0 if self._mode == "max" else 1.0

    def _encode(self, point: dict[str, Any]) -> dict[str, Any]:
        """A config's values as HEBO's (only the space's parameters)."""
        missing = [n for n in self._space.para_names if n not in point]
        if missing:
            raise bad_value("points_to_evaluate", point, f"a value for each of {missing}")
        return {n: (self._post[n].encode(point[n]) if n in self._post else point[n])
                for n in self._space.para_names}

    def _decode(self, values: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in values.items():
            if isinstance(value, np.generic):
                value = value.item()
            out[name] = self._post[name].decode(value) if name in self._post else value
        return out

    def _observe(self, values: dict[str, Any], reward: float) -> None:
        import pandas as pd

        frame = pd.DataFrame([values], columns=self._space.para_names)
        with self._own_rng():
            self._opt.observe(frame, np.array([[self._sign() * reward]]))

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        opt = self._ensure()
        if not self._live:
            self._batch_filled = False
        if self._points:
            point = flatten_dict(self._points.pop(0))
            self._live[trial_id] = self._encode(point)
            return unflatten_dict(point)
        if self._batch_filled or len(self._live) >= self._max_concurrent:
            return None
        if not self._cache:
            with self._own_rng():
                self._cache = opt.suggest(n_suggestions=self._max_concurrent).to_dict("records")
        values = self._cache.pop(0)
        config = self._decode(values)
        self._live[trial_id] = self._encode(config)  # the value that runs (rounded ones too)
        if len(self._live) >= self._max_concurrent:
            self._batch_filled = True
        return unflatten_dict(config)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        values = self._live.pop(trial_id, None)
        if values is None or error or not result:
            return
        reward = finite_metric(result.get(self._metric))
        if reward is None:
            return  # no finite metric: nothing HEBO can learn from
        self._observe(values, reward)

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Tell HEBO the result of a config evaluated elsewhere (errors and pruned points
        are skipped with a warning, as in Ray)."""
        self._ensure()
        if intermediate_values:
            logger.warning("HEBOSearch does not use `intermediate_values`; ignored")
        if error or pruned:
            logger.warning("HEBOSearch only learns from points that neither failed nor were "
                           "pruned; point ignored")
            return
        reward = finite_metric(value)
        if reward is None:
            raise bad_value("value", value, "a finite number")
        self._observe(self._encode(flatten_dict(parameters)), reward)
