"""Search-space domains: what a hyperparameter may be and how to draw it.

A domain (:class:`Float`, :class:`Integer`, :class:`Categorical`, :class:`Function`) says which
values are valid; a sampler (:class:`Uniform`, :class:`LogUniform`, :class:`Normal`,
:class:`Quantized`, :class:`Grid`) says how to draw one. The functions at the bottom
(``uniform``, ``randint``, ``choice``, ...) build both and are what users write in a
``param_space``. Semantics follow Ray Tune's ``ray.tune.search.sample``, including its bound
conventions:

* ``uniform``/``loguniform``/``randint``/``lograndint``: upper bound exclusive.
* ``quniform``/``qloguniform``/``qrandint``/``qlograndint``: the draw is rounded to a multiple
  of ``q``, which makes the upper bound reachable. Exception kept from Ray: with ``q=1`` no
  rounding happens for integers, so ``qrandint(1, 5)`` draws from 1..4. Floats are rounded
  for every ``q``: ``quniform(0, 10, 1)`` gives whole floats 0.0..10.0, in Ray 2.60 too.
* Quantized results are cast back to the domain's type (``float`` or ``int``).
* ``sample(size=n)`` with ``n > 1`` returns what Ray 2.60 returns: the numpy array of the
  draws for ``uniform``, ``loguniform``, ``randint``, ``lograndint`` and ``randn``; a list of
  values of the domain's type for the quantized ones, ``choice`` and ``sample_from`` (and,
  as in Syne Tune, for every domain of :mod:`poptune.syne_tune.config_space`).

Bad input is rejected when the domain is built, not when it is first sampled::

    >>> loguniform(0, 1)
    Traceback (most recent call last):
    ...
    poptune.exceptions.TuneConfigError: `lower` must be > 0 for loguniform, got 0

``sample`` takes ``random_state``: an int seed, a ``numpy.random.Generator`` or a
``RandomState``, or None for a generator seeded from numpy's global state (one draw), so that
``np.random.seed(...)`` in the driver repeats unseeded samples, as in Ray.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, Union

import numpy as np

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError, TuneError

__all__ = [
    "Categorical", "Domain", "Float", "Function", "Grid", "Integer", "LogUniform", "Normal",
    "Quantized", "RandomState", "Sampler", "Uniform", "as_generator", "choice", "grid_search",
    "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint", "qrandn", "quniform",
    "randint", "randn", "sample_from", "uniform",
]  # fmt: skip

RandomState = Union[None, int, np.random.Generator, np.random.RandomState]
Rng = Union[np.random.Generator, np.random.RandomState]
_MISSING: Any = object()
_D = TypeVar("_D", bound="Domain")
_R = TypeVar("_R", bound="_Range")
_NUMBER = (int, float, np.integer, np.floating)


def as_generator(random_state: RandomState) -> Rng:
    """Turn ``random_state`` into a numpy generator (never the global one itself).

    ``None`` gives a generator seeded from numpy's global random state (one draw), so
    ``np.random.seed(...)`` at the top of a driver repeats its unseeded searches, as it does
    in Ray Tune, whose samplers use the global state.

    Example:
        >>> as_generator(7).uniform() == as_generator(7).uniform()
        True
        >>> np.random.seed(3); a = as_generator(None).uniform()
        >>> np.random.seed(3); a == as_generator(None).uniform()
        True
    """
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if random_state is None:
        return np.random.default_rng(global_seed())
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise bad_value("random_state", random_state, "a seed >= 0")
        return np.random.default_rng(int(random_state))
    raise bad_type(
        "random_state", random_state, "None, an int seed, a numpy Generator or RandomState"
    )


def global_seed() -> int:
    """A seed drawn from numpy's global random state (one draw): what an unseeded searcher
    or scheduler starts from, so that ``np.random.seed(...)`` in the driver repeats a run."""
    return int(np.random.randint(0, 2**62, dtype=np.int64))


def _integers(rng: Rng, low: Any, high: Any, size: int) -> np.ndarray:
    if isinstance(rng, np.random.Generator):
        return rng.integers(low, high, size=size)
    return rng.randint(low, high, size=size)


def _number(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise bad_type(name, value, "a number")
    if math.isnan(value):
        raise bad_value(name, value, "a number, not NaN")
    return value


def _positive(name: str, value: Any) -> Any:
    if _number(name, value) <= 0 or math.isinf(value):
        raise bad_value(name, value, "> 0 and finite")
    return value


def _warn_base() -> None:
    warnings.warn("The `base` argument is deprecated and ignored.", DeprecationWarning, 3)


class Sampler:
    """How a domain draws values. Subclasses implement :meth:`_draw`."""

    #: ``size > 1`` gives the numpy array of the draws for a :class:`Float` or
    #: :class:`Integer` domain (as Ray 2.60's uniform, log-uniform and normal samplers do),
    #: not a list of values
    many_as_array = False

    def sample(
        self,
        domain: Domain,
        config: Any = None,
        size: int = 1,
        random_state: RandomState = None,
    ) -> Any:
        """Draw ``size`` values of ``domain``: one value if ``size == 1``; else, as Ray, a
        numpy array (see :attr:`many_as_array`) or a list of values of the domain's type."""
        if size == 1 and type(size) is int:  # one value per trial: the usual call
            return domain.cast(self._draw_one(domain, config, random_state))
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise bad_value("size", size, "an integer >= 1")
        draws = self._draw(domain, config, int(size), random_state)
        if size == 1:
            return domain.cast(draws[0])
        if (self.many_as_array and isinstance(domain, (Float, Integer))
                and not domain.many_as_list):
            return np.asarray(draws)
        return [domain.cast(v) for v in draws]

    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        raise NotImplementedError

    def _draw_one(self, domain: Domain, config: Any, random_state: RandomState) -> Any:
        """One raw draw: the first of ``_draw(..., 1, ...)`` (the same value)."""
        return self._draw(domain, config, 1, random_state)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Uniform(Sampler):
    """Uniform over the domain: floats in ``[lower, upper)``, integers in ``lower..upper-1``,
    categories with equal probability."""

    many_as_array = True

    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        rng = as_generator(random_state)
        if isinstance(domain, Categorical):
            # draw indices, not values, so that element types are preserved
            indices = rng.choice(np.arange(len(domain.categories)), size=size)
            return [domain.categories[i] for i in indices]
        if isinstance(domain, Integer):
            return _integers(rng, domain.lower, domain.upper, size)
        assert isinstance(domain, Float)
        return rng.uniform(domain.lower, domain.upper, size=size)

    def _draw_one(self, domain: Domain, config: Any, random_state: RandomState) -> Any:
        if type(domain) is Float:  # a scalar draw: the same value, without an array
            return as_generator(random_state).uniform(domain.lower, domain.upper)
        return super()._draw_one(domain, config, random_state)


class LogUniform(Sampler):
    """``exp(U(log lower, log upper))``; for integers the result is floored."""

    many_as_array = True

    def __init__(self, base: object = _MISSING) -> None:
        if base is not _MISSING:
            _warn_base()

    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        rng = as_generator(random_state)
        low, high = np.log(domain.lower), np.log(domain.upper)  # type: ignore[attr-defined]
        items = np.exp(rng.uniform(low, high, size=size))
        return np.floor(items).astype(int) if isinstance(domain, Integer) else items


class Normal(Sampler):
    """Normal draw with ``mean`` and standard deviation ``sd`` (unbounded floats only)."""

    many_as_array = True

    def __init__(self, mean: float = 0.0, sd: float = 1.0) -> None:
        self.mean = _number("mean", mean)
        self.sd = _positive("sd", sd)

    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        return as_generator(random_state).normal(self.mean, self.sd, size=size)

    def __repr__(self) -> str:
        return f"Normal(mean={self.mean}, sd={self.sd})"


class Grid(Sampler):
    """Marks a categorical domain as a grid: it is enumerated, never sampled."""

    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        raise TuneConfigError("a grid_search domain is enumerated by the variant generator")


class Quantized(Sampler):
    """Wraps another sampler and rounds its draws to a multiple of ``q``.

    For floats, the wrapped sampler draws in ``[ceil(lower/q)*q, floor(upper/q)*q]`` and the
    value is then rounded with ``round(value / q) * q``, as in Ray. For integers it draws the
    index ``k`` of a multiple ``k*q`` in ``[lower, upper]``, both bounds inclusive (Ray 2.60),
    so ``qrandint(0, 10, 2)`` draws 0, 2, ..., 10 alike; with ``q == 1`` an integer draw is
    not touched (Ray's shortcut: the upper bound stays exclusive).
    """

    def __init__(self, sampler: Sampler, q: float) -> None:
        if not isinstance(sampler, Sampler):
            raise bad_type("sampler", sampler, "a Sampler")
        self.sampler = sampler
        self.q = _positive("q", q)

    def get_sampler(self) -> Sampler:
        return self.sampler

    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        if self.q == 1 and isinstance(domain, Integer):
            # Ray's shortcut: integer draws need no rounding (so the upper bound stays
            # exclusive). Floats are still rounded, as in Ray 2.60.
            return self.sampler._draw(domain, config, size, random_state)
        if isinstance(domain, Integer):
            # as Ray 2.60: the multiples of q in [lower, upper] (both inclusive) are drawn
            # through their indices, so that each is as likely (uniform) as the sampler says
            step = int(self.q)
            first, last = -(-domain.lower // step), domain.upper // step  # >= 2 multiples
            indices = copy.copy(domain)
            indices.lower, indices.upper = first, last + 1
            return np.multiply(self.sampler._draw(indices, config, size, random_state), step)
        inner = copy.copy(domain)
        inner.lower, inner.upper = _quantized_bounds(domain, self.q)  # type: ignore[attr-defined]
        values = self.sampler._draw(inner, config, size, random_state)
        return np.round(np.divide(values, self.q)) * self.q

    def __repr__(self) -> str:
        return f"Quantized({self.sampler!r}, q={self.q})"


def _quantized_bounds(domain: Any, q: float) -> tuple[Any, Any]:
    """The range the inner sampler of a quantized domain draws from."""

    def snap(bound: Any, rounder: Callable[[float], int]) -> Any:
        if math.isinf(bound):
            return bound
        if isinstance(domain, Integer):  # exact integer arithmetic
            step = int(q)
            return -(-bound // step) * step if rounder is math.ceil else bound // step * step
        ratio = bound / q
        # bounds of a quantized Float were checked to be multiples of q; snap away float noise
        return (round(ratio) if math.isclose(ratio, round(ratio)) else rounder(ratio)) * q

    return snap(domain.lower, math.ceil), snap(domain.upper, math.floor)


class Domain:
    """A set of valid values plus the sampler that draws from it.

    The sampler-setting methods (``uniform()``, ``quantized()``, ...) return a new domain.
    """

    sampler: Sampler | None = None
    default_sampler_cls: type[Sampler] = Uniform
    #: ``sample(size > 1)`` returns a list whatever the sampler (Syne Tune's domains,
    #: :mod:`poptune.syne_tune.config_space`, set it)
    many_as_list = False

    def cast(self, value: Any) -> Any:
        """Convert a raw draw to the domain's type."""
        return value

    def set_sampler(self, sampler: Sampler, allow_override: bool = False) -> None:
        """Attach ``sampler``; a domain has one sampler unless ``allow_override``."""
        if self.sampler is not None and not allow_override:
            raise TuneConfigError(
                f"`sampler` must be set once per domain; {type(self).__name__} already has "
                f"{self.sampler!r}, got {sampler!r}"
            )
        self.sampler = sampler

    def get_sampler(self) -> Sampler:
        return self.sampler if self.sampler is not None else self.default_sampler_cls()

    def sample(self, config: Any = None, size: int = 1, random_state: RandomState = None) -> Any:
        """Draw one value (``size == 1``) or ``size`` values, as Ray returns them: a numpy
        array for a uniform, log-uniform or normal number domain, else a list.

        Example:
            >>> randint(0, 10).sample(random_state=0) in range(10)
            True
        """
        return self.get_sampler().sample(self, config=config, size=size, random_state=random_state)

    def is_grid(self) -> bool:
        return isinstance(self.sampler, Grid)

    def is_function(self) -> bool:
        return False

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` belongs to the domain."""
        raise NotImplementedError

    def _with(self: _D, sampler: Sampler, allow_override: bool = False) -> _D:
        new = copy.copy(self)
        new.set_sampler(sampler, allow_override=allow_override)
        return new

    @property
    def domain_str(self) -> str:
        return "(unknown)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.domain_str}, sampler={self.get_sampler()!r})"


class _Range(Domain):
    """Numbers between ``lower`` and ``upper`` (shared by :class:`Float` and :class:`Integer`)."""

    lower: Any
    upper: Any
    _log_name = "loguniform"

    def _finite(self, what: str) -> None:
        for name in ("lower", "upper"):
            if math.isinf(getattr(self, name)):
                raise bad_value(name, getattr(self, name), f"a finite number for {what}")

    def uniform(self: _R) -> _R:
        self._finite("uniform")
        return self._with(Uniform())

    def loguniform(self: _R, base: object = _MISSING) -> _R:
        if base is not _MISSING:
            _warn_base()
        if not self.lower > 0:
            raise bad_value("lower", self.lower, f"> 0 for {self._log_name}")
        self._finite(self._log_name)
        return self._with(LogUniform())

    def is_valid(self, value: Any) -> bool:
        return bool(self.lower <= value <= self.upper)

    @property
    def domain_str(self) -> str:
        return f"({self.lower}, {self.upper})"


class Float(_Range):
    """Real numbers in ``[lower, upper]``; ``None`` means unbounded on that side.

    Example:
        >>> Float(1e-4, 1e-1).loguniform().sample(random_state=3) < 0.1
        True
    """

    def __init__(self, lower: float | None, upper: float | None) -> None:
        self.lower = float("-inf") if lower is None else _number("lower", lower)
        self.upper = float("inf") if upper is None else _number("upper", upper)
        if not self.lower < self.upper:
            raise bad_value("lower", self.lower, f"less than `upper`={self.upper}")

    def cast(self, value: Any) -> float:
        return float(value)

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> Float:
        if not (math.isinf(self.lower) and math.isinf(self.upper)):
            raise TuneConfigError(
                f"`Float` must be unbounded for normal sampling, got ({self.lower}, {self.upper})"
            )
        return self._with(Normal(mean, sd))

    def quantized(self, q: float) -> Float:
        _positive("q", q)
        for name in ("lower", "upper"):
            bound = getattr(self, name)
            if not math.isinf(bound) and not math.isclose(bound / q, round(bound / q)):
                raise bad_value(name, bound, f"a multiple of q={q}")
        return self._with(Quantized(self.get_sampler(), q), allow_override=True)


def _int_bound(name: str, value: Any) -> int:
    _number(name, value)
    if isinstance(value, (float, np.floating)) and (math.isinf(value) or value != int(value)):
        raise bad_value(name, value, "an integer")
    return int(value)


class Integer(_Range):
    """Integers from ``lower``; ``randint`` draws up to ``upper - 1``.

    Example:
        >>> qrandint(0, 20, 5).sample(random_state=1) % 5
        0
    """

    _log_name = "lograndint"

    def __init__(self, lower: int, upper: int) -> None:
        self.lower = _int_bound("lower", lower)
        self.upper = _int_bound("upper", upper)
        if not self.lower < self.upper:
            raise bad_value("lower", self.lower, f"less than `upper`={self.upper}")

    def cast(self, value: Any) -> int:
        return int(value)

    def quantized(self, q: int) -> Integer:
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise bad_value("q", q, "a positive integer for an integer domain")
        lower, upper = _quantized_bounds(self, q)
        if q != 1 and not lower < upper:
            raise bad_value("q", q, f"small enough for [{self.lower}, {self.upper}] to hold "
                            "two of its multiples")  # fmt: skip
        return self._with(Quantized(self.get_sampler(), int(q)), allow_override=True)


class Categorical(Domain):
    """One of a list of values (any types; they are returned as given, never coerced).

    Example:
        >>> choice(["relu", "tanh"]).sample(random_state=0) in ("relu", "tanh")
        True
    """

    def __init__(self, categories: Sequence[Any]) -> None:
        if isinstance(categories, (str, bytes, Mapping)) or not isinstance(categories, Iterable):
            raise bad_type("categories", categories, "a non-empty list of values")
        self.categories = list(categories)
        if not self.categories:
            raise bad_value("categories", categories, "a non-empty list of values")

    def uniform(self) -> Categorical:
        return self._with(Uniform())

    def grid(self) -> Categorical:
        return self._with(Grid())

    def __len__(self) -> int:
        return len(self.categories)

    def __getitem__(self, index: int) -> Any:
        return self.categories[index]

    def is_valid(self, value: Any) -> bool:
        return value in self.categories

    @property
    def domain_str(self) -> str:
        return f"{self.categories}"


class _CallSampler(Sampler):
    def _draw(self, domain: Domain, config: Any, size: int, random_state: RandomState) -> Any:
        assert isinstance(domain, Function)
        if not domain.pass_config:
            return [domain.func() for _ in range(size)]
        configs = config if isinstance(config, list) else [config] * size
        return [domain.func(config_view(c)) for c in configs[:size]]


class Function(Domain):
    """A value computed by a user function, called as ``func()`` or ``func(config)``.

    The argument gives access to the values resolved so far, both as ``config["a"]`` /
    ``config.a`` and in Ray's older spec style ``spec.config.a`` / ``spec["config"]["a"]``.
    """

    default_sampler_cls = _CallSampler

    def __init__(self, func: Callable[..., Any]) -> None:
        if not callable(func):
            raise bad_type("func", func, "a callable taking no argument or the config")
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins have no signature; assume func(config)
            sig = None
        self.pass_config = True
        if sig is not None:
            try:
                sig.bind({})
            except TypeError:
                self.pass_config = False
                try:
                    sig.bind()
                except TypeError:
                    raise bad_value(
                        "func", func, "callable with no argument or with one (the config)"
                    ) from None
        self.func = func

    def is_function(self) -> bool:
        return True

    def is_valid(self, value: Any) -> bool:
        return True

    @property
    def domain_str(self) -> str:
        return f"{getattr(self.func, '__qualname__', self.func)}()"


def uniform(lower: float, upper: float) -> Float:
    """A float drawn uniformly from ``[lower, upper)``.

    Example:
        >>> -5 <= uniform(-5, -1).sample(random_state=0) < -1
        True

    Reversed bounds (``uniform(1e-2, 1e-5)``, as in Ray's DCGAN example) are accepted as Ray
    accepts them, with a warning, and mean the same interval.
    """
    if isinstance(lower, (int, float)) and isinstance(upper, (int, float)) and lower > upper:
        warnings.warn(
            f"uniform({lower!r}, {upper!r}): `lower` is greater than `upper`; sampling from "
            f"[{upper!r}, {lower!r}) as Ray Tune does", UserWarning, stacklevel=2)
        lower, upper = upper, lower
    return Float(lower, upper).uniform()


def quniform(lower: float, upper: float, q: float) -> Float:
    """A uniform float rounded to a multiple of ``q`` (bounds must be multiples of ``q``)."""
    return Float(lower, upper).uniform().quantized(q)


def loguniform(lower: float, upper: float, base: object = _MISSING) -> Float:
    """A float drawn uniformly in log space from ``[lower, upper)``; ``lower`` must be > 0.

    Example:
        >>> 1e-4 <= loguniform(1e-4, 1e-2).sample(random_state=0) < 1e-2
        True
    """
    if base is not _MISSING:
        _warn_base()
    return Float(lower, upper).loguniform()


def qloguniform(lower: float, upper: float, q: float, base: object = _MISSING) -> Float:
    """A log-uniform float rounded to a multiple of ``q``; ``upper`` becomes reachable."""
    if base is not _MISSING:
        _warn_base()
    return Float(lower, upper).loguniform().quantized(q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    """A float drawn from a normal distribution; ``sd`` must be > 0."""
    return Float(None, None).normal(mean, sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    """A normal float rounded to a multiple of ``q``."""
    return Float(None, None).normal(mean, sd).quantized(q)


def randint(lower: int, upper: int) -> Integer:
    """An integer drawn uniformly from ``lower`` to ``upper - 1`` (upper exclusive).

    Example:
        >>> randint(0, 3).sample(size=5, random_state=0)
        array([2, 1, 1, 0, 0])
    """
    return Integer(lower, upper).uniform()


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """A uniform integer rounded to a multiple of ``q``; for ``q > 1`` ``upper`` is reachable."""
    return Integer(lower, upper).uniform().quantized(q)


def lograndint(lower: int, upper: int, base: object = _MISSING) -> Integer:
    """An integer drawn log-uniformly from ``lower`` to ``upper - 1``; ``lower`` must be > 0."""
    if base is not _MISSING:
        _warn_base()
    return Integer(lower, upper).loguniform()


def qlograndint(lower: int, upper: int, q: int, base: object = _MISSING) -> Integer:
    """A log-uniform integer rounded to a multiple of ``q``; ``upper`` becomes reachable."""
    if base is not _MISSING:
        _warn_base()
    return Integer(lower, upper).loguniform().quantized(q)


def choice(categories: Sequence[Any]) -> Categorical:
    """One of ``categories`` with equal probability, returned with its own type (not coerced).

    Example:
        >>> choice([2, 3, 4]).sample(random_state=0) in (2, 3, 4)
        True
    """
    return Categorical(categories).uniform()


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed by ``func``, for conditional spaces.

    ``func`` takes no argument or the partially resolved config; the values it reads are
    resolved first (in Ray's spec style, ``spec.config.a`` works too).

    Example:
        >>> from poptune.search.variant_generator import generate_variants
        >>> space = {"a": randint(5, 10), "b": sample_from(lambda config: config["a"] * 2)}
        >>> _, config = next(generate_variants(space, random_state=0))
        >>> config["b"] == 2 * config["a"]
        True
    """
    return Function(func)


def grid_search(values: Iterable[Any]) -> dict[str, Any]:
    """Every value is tried; several grids combine as a cartesian product.

    Example:
        >>> grid_search([10, 20])
        {'grid_search': [10, 20]}
    """
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise bad_type("values", values, "a non-empty list of values")
    if not isinstance(values, (list, tuple)):
        values = list(values)
    if len(values) == 0:
        raise bad_value("values", values, "a non-empty list of values")
    return {"grid_search": values}


# -- what a sample_from function sees -------------------------------------------------------
def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "grid_search" in value


def _is_eval(value: Any) -> bool:
    """Ray's JSON-style function: a one-key ``{"eval": "<python expression>"}`` dict."""
    return isinstance(value, dict) and len(value) == 1 and "eval" in value


@functools.lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return compile(expression, "<eval>", "eval")


def _evaluate(expression: str, spec: Any) -> Any:
    """Ray's globals for an ``{"eval": ...}`` expression: ``np`` and ``random``."""
    return eval(_compiled(expression), {"np": np, "random": random}, {"spec": spec})  # noqa: S307


class _Eval(Function):
    """A ``{"eval": "<expression>"}`` entry: the expression is evaluated with ``spec`` (the
    config resolved so far, read as ``spec.config.a`` or ``spec.a``) and the modules ``np``
    and ``random``, as Ray evaluates it. Unlike a ``sample_from`` value, its value appears in
    the trial's tag (Ray hides only ``sample_from`` functions from tags)."""

    def __init__(self, where: str, expression: Any) -> None:
        if not isinstance(expression, str):
            raise bad_value(f"{where}/eval", expression,
                            "a Python expression string using `spec`, `np` and `random`")
        try:
            _compiled(expression)
        except SyntaxError as exc:
            raise bad_value(
                f"{where}/eval", expression,
                f"a valid Python expression using `spec`, `np` and `random` ({exc.msg})",
            ) from None
        self.expression = expression
        super().__init__(functools.partial(_evaluate, expression))  # picklable

    @property
    def domain_str(self) -> str:
        return f"{{'eval': {self.expression!r}}}"

    def __repr__(self) -> str:
        return f"{{'eval': {self.expression!r}}}"


def has_unresolved(value: Any) -> bool:
    """Whether ``value`` holds a domain, a grid or an ``{"eval": ...}`` entry anywhere inside
    (dicts, lists, tuples)."""
    if isinstance(value, Domain) or _is_grid(value) or _is_eval(value):
        return True
    if isinstance(value, dict):
        return any(has_unresolved(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_unresolved(v) for v in value)
    return False


class _UnresolvedAccess(TuneError):
    """A ``sample_from`` function read a value that is not resolved yet (at ``path``)."""

    def __init__(self, path: tuple[Any, ...]) -> None:
        super().__init__(f"`{'/'.join(str(k) for k in path)}` is not resolved yet")
        self.path = path


def _view(value: Any, path: tuple[Any, ...]) -> Any:
    """What reading ``value`` (at ``path``) gives a ``sample_from`` function.

    Only an unresolved value itself raises: a dict or list still holding unresolved entries
    (say the reading function's own entry) is returned as a view, and raises only if one of
    those entries is read. This is what lets ``config["opt"]["lr"]`` work from a function
    that sits in ``opt`` itself.
    """
    if isinstance(value, Domain) or _is_grid(value) or _is_eval(value):
        raise _UnresolvedAccess(path)
    if isinstance(value, dict):
        return _ConfigView(value, root=False, path=path)
    if isinstance(value, (list, tuple)) and has_unresolved(value):
        return _SequenceView(value, path)
    return value


class _ConfigView(Mapping):  # type: ignore[type-arg]
    """Read-only view of a partially resolved config for ``sample_from`` functions.

    ``view["a"]``, ``view.a``, ``view["config"]["a"]`` and ``view.config.a`` all work (the
    last two are Ray's spec style). Reading a value that is still a domain raises
    :class:`_UnresolvedAccess`, so the function is retried once that value is resolved.
    """

    __slots__ = ("_data", "_root", "_path")

    def __init__(
        self, data: Mapping[str, Any], root: bool = True, path: tuple[Any, ...] = ()
    ) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_path", path)

    def __getitem__(self, key: Any) -> Any:
        if key == "config" and self._root and "config" not in self._data:
            return self
        return _view(self._data[key], self._path + (key,))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the config seen by sample_from is read-only")

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"config_view({self._data!r})"


class _SequenceView(Sequence):  # type: ignore[type-arg]
    """Read-only view of a list or tuple that still holds unresolved entries."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Sequence[Any], path: tuple[Any, ...]) -> None:
        self._data = data
        self._path = path

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            items = [self[i] for i in range(*index.indices(len(self._data)))]
            return items if isinstance(self._data, list) else tuple(items)
        value = self._data[index]  # IndexError / TypeError as for the list itself
        position = index + len(self._data) if index < 0 else index
        return _view(value, self._path + (position,))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"config_view({self._data!r})"


def config_view(config: Any) -> Any:
    """Wrap a config mapping for a ``sample_from`` function (other values pass through)."""
    if isinstance(config, Mapping) and not isinstance(config, _ConfigView):
        return _ConfigView(config)
    return config
