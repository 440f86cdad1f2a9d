"""ZOOpt adapter (``ray.tune.search.zoopt.ZOOptSearch``): zoopt's sequential RAndomized
COordinate Shrinking (SRacos, ``SRacosTune``), as in Ray for both ``algo="asracos"`` and
``"sracos"``.

The space is a ``dim_dict`` in zoopt's form (``(ValueType.CONTINUOUS, [lower, upper],
precision)``, ``(ValueType.DISCRETE, [lower, upper], has_order)``, ``(ValueType.GRID,
[values])``) or of poptune domains (the two may be mixed), or the Tuner's ``param_space``.
Domains are searched with their exact value sets: ``uniform`` as a continuous range
(precision 1e-12, as Ray), ``randint`` as the integers ``lower..upper-1``, ``quniform`` and
``qrandint`` as the multiples of ``q`` within their bounds (zoopt searches the multiple's
index), ``choice`` and zoopt's ``GRID`` as an unordered index into the values, which reach the
trainable as given. Log and normal domains are refused, naming the parameter;
``sample_from`` entries are drawn by the Tuner after the suggestion; nested keys are joined
with ``"/"``. :meth:`ZOOptSearch.convert_search_space` returns the ``dim_dict`` Ray builds
for a space, tuple for tuple.

Differences from Ray (2.60, with zoopt 0.4.2), each where Ray's adapter goes wrong:

* ``budget`` is the number of trials: after ``budget`` suggestions the searcher returns
  ``FINISHED`` (Ray's keeps suggesting and ``num_samples`` decides). Below 3, where zoopt
  calls ``sys.exit(1)``, it is refused.
* A trial that fails or ends without a finite metric is told to zoopt as the worst value
  (``+inf``): SRacos waits for every suggestion before it suggests more, and Ray's adapter,
  which does not tell it, then waits for ever.
* When its initial trials had all ended before the next suggestion was asked for (one trial
  at a time, ``max_concurrent_trials``, fewer workers than initial trials), SRacos stopped
  suggesting for good; poptune resumes it.
* Where SRacos finds no new point in the region it samples (which in a finite space makes
  Ray's search wait for ever), or re-suggests a point of a finite space that already ran,
  a point of the whole space is drawn instead; a finite space that has been fully run ends
  the search (``FINISHED``).
* ``points_to_evaluate`` all run first, exactly as given (zoopt 0.4.2 drops those asked for
  after the first trial ended and those beyond its initial sample).
* zoopt draws every random number from numpy's global random state (``Parameter(seed=)``
  is not used by ``SRacosTune``) and keeps the float precisions of the last space built in a
  module global. poptune swaps the searcher's own random state and precisions in around each
  zoopt call (and sends zoopt's printed messages to the debug log): the keyword-only ``seed``
  makes the search reproducible, a restored searcher continues identically, the script's
  ``np.random`` stream is left untouched, and two searchers in one process no longer corrupt
  each other's search. ``np.random.seed()`` in a script no longer seeds the search: pass
  ``seed``.
* Categories come back as given: Ray's ``GRID`` returns numpy scalars (``np.str_("a")``,
  ``np.int64(4)``), and zoopt's classifier samples a ``GRID`` from its first two values only.
* Of ``**kwargs`` (which Ray passes to ``SRacosTune``, which ignores them all), the
  ``zoopt.Parameter`` options SRacos uses, ``exploration_rate`` and ``uncertain_bits``, are
  honoured; others are ignored with a warning.
* Bad arguments raise errors naming the argument, the value and what is accepted (Ray
  asserts, or fails later).
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from poptune._imports import require
from poptune._validation import bad_type, bad_value, check_in_range, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search._adapter import SearcherAdapter, check_seed, copy_points, numeric_range
from poptune.search._base import Searcher, finite_metric
from poptune.search.sample import Categorical, Domain, Float, Function, Integer, Uniform
from poptune.search.variant_generator import _join, _parse, flatten_dict, unflatten_dict

__all__ = ["ZOOptSearch"]

logger = logging.getLogger(__name__)

#: zoopt's ``ValueType`` members (plain ints)
DISCRETE, CONTINUOUS, GRID = 0, 1, 2
#: Ray's precision for a continuous domain
_PRECISION = 1e-12
#: ``zoopt.Parameter`` options SRacos uses, taken from ``**kwargs``
_PARAMETER_KWARGS = ("exploration_rate", "uncertain_bits")
#: a finite space at most this large is enumerated to find the points not suggested yet
_ENUMERATE_MAX = 100_000
_ACCEPTED_DOMAINS = ("uniform and quantized uniform floats and integers (tune.uniform, "
                     "tune.quniform, tune.randint, tune.qrandint) and tune.choice")
_ACCEPTED_ENTRY = ("(ValueType.CONTINUOUS, [lower, upper], precision), (ValueType.DISCRETE, "
                   "[lower, upper], has_order), (ValueType.GRID, [values]) or a poptune domain")


def _zoopt() -> Any:
    return require("zoopt", "ZOOptSearch")


def _debug(text: Any) -> None:
    logger.debug("zoopt: %s", text)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


@dataclass
class _Dim:
    """One searched parameter: the ``Dimension2`` entry zoopt searches, and what its values
    stand for (an index into ``categories``, or ``k`` for the value ``k * step``)."""

    name: str
    entry: tuple[Any, ...]
    categories: list[Any] | None = None
    step: float | None = None
    integer: bool = False

    def decode(self, value: Any) -> Any:
        if self.categories is not None:
            return self.categories[int(value)]
        if self.step is not None:
            value = value * self.step
        return int(value) if self.integer else float(value)

    def encode(self, value: Any, where: str) -> Any:
        """zoopt's value for a ``points_to_evaluate`` value."""
        if self.categories is not None:
            for index, category in enumerate(self.categories):
                with contextlib.suppress(Exception):  # an odd __eq__ is no match
                    if category is value or bool(category == value):
                        return index
            raise bad_value(where, value, f"one of {self.categories!r}")
        low, high = self.entry[1]
        number = _is_number(value) and math.isfinite(value)
        if self.step is not None:  # zoopt's value: the multiple of step nearest the value
            multiple = round(value / self.step) if number else None
            if multiple is None or not low <= multiple <= high or (
                self.integer and value != int(value)
            ):
                kind = "an integer" if self.integer else "a number"
                raise bad_value(where, value, f"{kind} in [{low * self.step}, {high * self.step}]")
            return int(multiple)
        if not number or not low <= value <= high or (self.integer and value != int(value)):
            kind = "an integer" if self.integer else "a number"
            raise bad_value(where, value, f"{kind} in [{low}, {high}]")
        return int(value) if self.entry[0] == DISCRETE else float(value)


def _path_name(path: tuple[Any, ...], where: str, value: Any) -> str:
    if not all(isinstance(k, str) and "/" not in k for k in path):
        raise TuneConfigError(
            f"`{where}` entry {_join(path)!r} must sit in nested dicts with string keys free "
            f"of '/' for ZOOptSearch, got {value!r} there")
    return "/".join(path)


def _domain_dim(name: str, domain: Domain) -> _Dim:
    r = numeric_range(domain)
    if r is not None and not r.log and math.isfinite(r.low) and math.isfinite(r.high):
        if r.q is not None:  # searched as the multiples' indices
            return _Dim(name, (DISCRETE, [round(r.low / r.q), round(r.high / r.q)], True),
                        step=r.q, integer=r.integer)
        if r.integer:
            return _Dim(name, (DISCRETE, [r.low, r.high], True), integer=True)
        return _Dim(name, (CONTINUOUS, [r.low, r.high], _PRECISION))
    if isinstance(domain, Categorical) and isinstance(domain.get_sampler(), Uniform):
        return _categorical(name, domain.categories)
    raise TuneConfigError(f"`{name}` has domain {domain!r}, which ZOOptSearch cannot search; "
                          f"it takes {_ACCEPTED_DOMAINS}")


def _categorical(name: str, values: list[Any]) -> _Dim:
    # unordered DISCRETE over the indices: zoopt's GRID turns values into numpy scalars and
    # its classifier samples a GRID from its first two values only
    return _Dim(name, (DISCRETE, [0, len(values) - 1], False), categories=list(values))


def _entry_dim(name: str, entry: Any) -> _Dim:
    """A ``dim_dict`` value in zoopt's tuple form, checked."""
    where = f"dim_dict[{name!r}]"
    if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3) or isinstance(
        entry[0], bool
    ) or entry[0] not in (DISCRETE, CONTINUOUS, GRID):
        raise bad_value(where, entry, _ACCEPTED_ENTRY)
    kind, values = entry[0], entry[1]
    if kind == GRID:
        if not isinstance(values, (list, tuple, range)) or not values:
            raise bad_value(where, entry, "(ValueType.GRID, [values]) with at least one value")
        return _categorical(name, list(values))
    if kind == DISCRETE and isinstance(values, range):
        # range(lower, upper + 1): its values (zoopt would read values[0] and values[1] as
        # the bounds, searching [lower, lower + 1] only)
        if values.step != 1 or not values:
            raise bad_value(where, entry, "a discrete range(lower, upper + 1) of step 1, or "
                                          "[lower, upper]")
        values = [values.start, values.stop - 1]
    if len(entry) != 3 or not isinstance(values, (list, tuple)) or len(values) != 2 or not all(
        _is_number(v) and math.isfinite(v) for v in values
    ):
        raise bad_value(where, entry, _ACCEPTED_ENTRY)
    low, high = values
    if kind == CONTINUOUS:
        if not low < high:
            raise bad_value(where, entry, "a continuous range [lower, upper] with lower < upper")
        if not _is_number(entry[2]) or not 0 < entry[2] < math.inf:
            raise bad_value(where, entry, "a continuous entry with a precision > 0 (e.g. 1e-2)")
        return _Dim(name, (CONTINUOUS, [float(low), float(high)], entry[2]))
    if low != int(low) or high != int(high) or not low <= high:
        raise bad_value(where, entry, "a discrete range [lower, upper] of integers, lower <= "
                                      "upper")
    if not isinstance(entry[2], (bool, np.bool_)):
        raise bad_value(where, entry, "a discrete entry whose third item, has_order, is a bool")
    return _Dim(name, (DISCRETE, [int(low), int(high)], bool(entry[2])), integer=True)


def _space_dims(spec: dict[str, Any], where: str) -> list[_Dim]:
    """The parameters to search in ``spec``: ``dim_dict`` (zoopt tuples and domains) or
    the Tuner's ``param_space`` (domains; other values are the Tuner's)."""
    domains, grids = _parse(spec)
    if grids:
        raise TuneConfigError(
            f"`{where}` entries {[_join(p) for p, _ in grids]} are grid_search, which "
            "ZOOptSearch cannot search; use tune.choice, or the default search for grids")
    if where == "param_space":
        return [_domain_dim(_path_name(path, where, d), d)
                for path, d in domains if not isinstance(d, Function)]
    dims = []
    for name, value in flatten_dict(spec).items():
        if isinstance(value, Function):
            raise bad_type(f"dim_dict[{name!r}]", value, "a zoopt tuple or a domain other than "
                           "sample_from (put sample_from in the Tuner's param_space)")
        dims.append(_domain_dim(name, value) if isinstance(value, Domain)
                    else _entry_dim(name, value))
    return dims


def _ray_entry(name: str, domain: Domain) -> tuple[Any, ...]:
    """Ray's ``dim_dict`` tuple for a domain (after checking that poptune can search it)."""
    dim = _domain_dim(name, domain)
    if dim.categories is not None:
        return (GRID, dim.categories)
    q = getattr(domain.get_sampler(), "q", None)
    if isinstance(domain, Float):
        return (CONTINUOUS, [domain.lower, domain.upper], q or _PRECISION)
    assert isinstance(domain, Integer)
    return (DISCRETE, [domain.lower, domain.upper - 1], True)


class ZOOptSearch(SearcherAdapter):
    """Derivative-free search with ZOOpt's SRacos (see the module docstring for the
    differences from Ray).

    Args:
        algo: ``"asracos"`` or ``"sracos"`` (any case); both run zoopt's ``SRacosTune``, as
            in Ray.
        budget: the number of trials (>= 3); it also sizes zoopt's initial sample.
        dim_dict: the space: ``{name: (ValueType.CONTINUOUS, [lower, upper], precision)``,
            ``(ValueType.DISCRETE, [lower, upper], has_order)``, ``(ValueType.GRID,
            [values])`` or a poptune domain ``}``; None: the Tuner's ``param_space``.
        metric: the result key to optimize.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: configs to run first.
        parallel_num: how many trials SRacos keeps running after its initial ones.
        seed: seeds zoopt's draws (poptune extension; None: fresh entropy).
        **kwargs: ``exploration_rate`` and ``uncertain_bits``, passed to ``zoopt.Parameter``;
            any other keyword is ignored with a warning (Ray's ``SRacosTune`` ignored them).

    Example:
        >>> import poptune as tune
        >>> searcher = ZOOptSearch(budget=10, metric="loss", mode="min", seed=0)
        >>> searcher.set_search_properties(None, None, {"x": tune.uniform(-10, 10),
        ...                                             "act": tune.choice(["relu", "tanh"])})
        True
        >>> config = searcher.suggest("t0")
        >>> -10 <= config["x"] <= 10 and config["act"] in ("relu", "tanh")
        True
        >>> searcher.on_trial_complete("t0", {"loss": (config["x"] - 3) ** 2})
        >>> from zoopt import ValueType
        >>> ZOOptSearch.convert_search_space({"x": tune.uniform(-10, 10)}) == {
        ...     "x": (ValueType.CONTINUOUS, [-10, 10], 1e-12)}
        True
    """

    def __init__(
        self,
        algo: str = "asracos",
        budget: int | None = None,
        dim_dict: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        parallel_num: int = 1,
        *,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        _zoopt()
        check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        if not isinstance(algo, str):
            raise bad_type("algo", algo, "'asracos' or 'sracos' (any case)")
        if algo.lower() not in ("asracos", "sracos"):
            raise bad_value("algo", algo, "'asracos' or 'sracos' (any case)")
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 3:
            raise bad_value("budget", budget, "an integer >= 3: the number of trials (zoopt "
                                              "needs at least 3)")
        if isinstance(parallel_num, bool) or not isinstance(
            parallel_num, (int, np.integer)
        ) or parallel_num < 1:
            raise bad_value("parallel_num", parallel_num, "an integer >= 1")
        check_seed("seed", seed)
        if seed is not None and seed < 0:
            raise bad_value("seed", seed, "an integer >= 0 or None")
        if dim_dict is not None and not isinstance(dim_dict, dict):
            raise bad_type("dim_dict", dim_dict, "a dict of zoopt tuples or domains, or None")
        self._parameter_kwargs = self._check_kwargs(kwargs)
        self.kwargs = dict(kwargs)  # Ray's attribute
        self._algo = algo.lower()
        self._budget = int(budget)
        self.parallel_num = int(parallel_num)
        self._points = copy_points(points_to_evaluate)
        self._np_state: Any = np.random.RandomState(
            np.random.MT19937(np.random.SeedSequence(seed))).get_state()
        self._dims: list[_Dim] | None = None
        self._precisions: list[Any] = []  # zoopt's module-global float precisions, ours
        self.optimizer: Any = None  # zoopt's SRacosTune (Ray's attribute)
        self._encoded: list[tuple[list[Any], dict[str, Any]]] = []  # points left to run
        self._live: dict[str, Any] = {}  # trial id -> zoopt Solution
        self._seen: set[tuple[int, ...]] | None = None  # a finite space's suggested points
        self._suggested = 0
        self._finished = False
        self._warned_missing = False
        if dim_dict:
            self._setup(_space_dims(dim_dict, "dim_dict"))

    @staticmethod
    def _check_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
        taken = {k: v for k, v in kwargs.items() if k in _PARAMETER_KWARGS}
        if "exploration_rate" in taken:
            check_in_range("exploration_rate", taken["exploration_rate"], 0, 1)
        bits = taken.get("uncertain_bits")
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or bits < 1):
            raise bad_value("uncertain_bits", bits, "an integer >= 1 or None")
        ignored = sorted(k for k in kwargs if k not in _PARAMETER_KWARGS)
        if ignored:
            logger.warning(
                "ZOOptSearch ignores %s: zoopt's SRacosTune, which Ray passes them to, does not "
                "use them; the options it takes are %s", ", ".join(map(repr, ignored)),
                ", ".join(_PARAMETER_KWARGS))
        return taken

    @staticmethod
    def convert_search_space(spec: dict[str, Any], join: bool = False) -> dict[str, Any]:
        """Ray's ``dim_dict`` for the domains of ``spec`` (``"a/b"`` keys for nested ones);
        with ``join``, ``spec`` (a copy) updated with them, as Ray does.

        These are the tuples Ray builds: ``quniform`` keeps its range with precision ``q``
        and ``qrandint`` becomes ``randint``'s range, so passing the domains themselves (or
        the Tuner's ``param_space``) searches them more exactly.
        """
        spec = copy.deepcopy(spec)
        domains, grids = _parse(spec)
        if not domains and not grids:
            return {}
        _space_dims(spec, "param_space")  # grids and unsupported domains raise here
        converted = {
            name: _ray_entry(name, domain) for name, domain in (
                (_path_name(path, "param_space", d), d) for path, d in domains
                if not isinstance(d, Function))}
        if join:
            spec.update(converted)
            return spec
        return converted

    # ------------------------------------------------------------------ zoopt's globals
    @contextlib.contextmanager
    def _zoopt_globals(self) -> Iterator[None]:
        """Run zoopt on this searcher's random state and float precisions, with its printed
        messages sent to the debug log, leaving numpy's global random state and zoopt's
        module globals as they were."""
        gl = require("zoopt.utils.zoo_global", "ZOOptSearch").gl
        tool = require("zoopt.utils.tool_function", "ZOOptSearch").ToolFunction
        saved = np.random.get_state(), gl.float_precisions, tool.__dict__["log"]
        np.random.set_state(self._np_state)
        gl.float_precisions = self._precisions
        tool.log = staticmethod(_debug)
        try:
            yield
        finally:
            self._np_state = np.random.get_state()
            self._precisions = gl.float_precisions
            np.random.set_state(saved[0])
            gl.float_precisions, tool.log = saved[1], saved[2]

    def _setup(self, dims: list[_Dim]) -> None:
        self._dims = dims
        if not dims:
            return  # suggest() says there is no space
        encoded = []
        for i, point in enumerate(self._points):
            flat = flatten_dict(point)
            missing = [d.name for d in dims if d.name not in flat]
            if missing:
                raise bad_value(f"points_to_evaluate[{i}]", point,
                                f"a config with a value for every searched parameter "
                                f"(missing {missing})")
            x = [d.encode(flat[d.name], f"points_to_evaluate[{i}][{d.name!r}]") for d in dims]
            encoded.append((x, flat))
        self._encoded = encoded
        self._seen = set() if all(d.entry[0] == DISCRETE for d in dims) else None
        zoopt = _zoopt()
        from zoopt.algos.opt_algorithms.racos.sracos import SRacosTune

        with self._zoopt_globals():
            dimension = zoopt.Dimension2([d.entry for d in dims])  # sets the precisions
            parameter = zoopt.Parameter(budget=self._budget, **self._parameter_kwargs)
            # every point is one of the initial samples (zoopt's init_samples may drop some)
            parameter.set_train_size(max(parameter.get_train_size(), len(encoded)))
            self.optimizer = SRacosTune(dimension=dimension, parameter=parameter,
                                        parallel_num=self.parallel_num)

    # the Tuner's param_space, taken once (SearcherAdapter.set_search_properties)
    def _has_own_space(self) -> bool:
        return self._dims is not None

    def _parse_space(self, config: dict[str, Any]) -> list[_Dim]:
        return _space_dims(config, "param_space")

    def _same_space(self, parsed: list[_Dim]) -> bool:
        return [d.name for d in parsed] == [d.name for d in self._dims or []]

    def _install_space(self, parsed: list[_Dim]) -> None:
        self._setup(parsed)

    def _objective_fixed(self) -> bool:
        return self._suggested > 0

    # ----------------------------------------------------------------- searcher hooks
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.optimizer is None:
            raise TuneConfigError("ZOOptSearch has no search space: pass `dim_dict`, or "
                                  "domains in the Tuner's `param_space`")
        self._require_metric_mode()
        if self._finished or self._suggested >= self._budget:
            self._finished = True
            return Searcher.FINISHED
        with self._zoopt_globals():
            solution = self._ask()
            point: dict[str, Any] = {}
            if not isinstance(solution, str) and solution is not None and self._encoded:
                x, point = self._encoded.pop(0)
                solution.set_x(x)
        if isinstance(solution, str):
            self._finished = True
            return Searcher.FINISHED
        if solution is None:
            return None
        self._live[trial_id] = solution
        self._suggested += 1
        if self._seen is not None:
            self._seen.add(tuple(solution.get_x()))
        assert self._dims is not None
        config = {d.name: d.decode(v) for d, v in zip(self._dims, solution.get_x())}
        return unflatten_dict({**config, **point})  # a point runs exactly as given

    def _ask(self) -> Any:
        """zoopt's next solution, None (wait for results) or ``"FINISHED"``."""
        opt = self.optimizer
        for _ in range(2):
            live = opt.live_num
            solution = opt.suggest()
            counted = opt.live_num > live  # zoopt counts the solution as a live trial
            if solution is None and not counted:
                # zoopt waits for its initial trials (semaphore 0); if they all ended before
                # this call it would wait for ever: resume it
                if opt.semaphore == 0 and (
                    opt.complete_num >= opt.get_parameters().get_train_size()
                ):
                    opt.semaphore = 1
                    continue
                return None
            if isinstance(solution, str) or solution is None or self._repeats(solution):
                # zoopt found no new point where it looked (its classifier's region; for a
                # finite space it then counts a None as live, and Ray's search waits for
                # ever), or a finite space's point already run: look in the whole space
                solution = self._explore()
                if solution is None:
                    opt.live_num = live
                    return "FINISHED"
                if not counted:
                    opt.live_num += 1
                    opt.init_num += 1
            return solution
        return None

    def _repeats(self, solution: Any) -> bool:
        """Whether ``solution`` is a point of a finite space suggested before (a point to
        evaluate replaces it, so then it does not matter)."""
        return (self._seen is not None and not self._encoded
                and tuple(solution.get_x()) in self._seen)

    def _explore(self) -> Any:
        """A solution drawn from the whole space (a finite space: one not suggested yet),
        None if there is none."""
        opt = self.optimizer
        dim = opt.get_objective().get_dim()
        if self._seen is None:  # a continuous parameter: zoopt's own exploration draw
            solution, distinct = opt.distinct_sample(
                dim, opt.get_positive_data() + opt.get_negative_data())
            return solution if distinct else None
        size = dim.limited_space()[1]
        if len(self._seen) >= size:
            return None
        for _ in range(100):
            x = dim.rand_sample()
            if tuple(x) not in self._seen:
                return opt.get_objective().construct_solution(x)
        if size > _ENUMERATE_MAX:
            return None
        left = [x for x in itertools.product(*(range(lo, hi + 1) for lo, hi in dim.get_regions()))
                if x not in self._seen]
        return opt.get_objective().construct_solution(list(left[np.random.randint(len(left))]))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        solution = self._live.pop(trial_id, None)
        if solution is None:
            return
        value = None if error or not result else finite_metric(result.get(self._metric))
        if value is None:
            if not error and not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "ZOOptSearch: trial %s ended without a finite `%s` (got %r; keys: %s); it "
                    "counts as the worst result", trial_id, self._metric,
                    None if not result else result.get(self._metric), sorted(result or {}))
            loss = math.inf  # zoopt must hear of every suggestion to keep suggesting
        else:
            loss = -value if self._mode == "max" else value
        with self._zoopt_globals():
            self.optimizer.complete(solution, loss)

    # ----------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """Everything, zoopt's optimizer and random state included (a copy)."""
        return copy.deepcopy(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(copy.deepcopy(state))
