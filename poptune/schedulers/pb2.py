"""Population Based Bandits (``ray.tune.schedulers.pb2.PB2``), with mixed spaces (PB2-Mix).

PB2 is PBT whose *explore* step is a time-varying GP bandit: at each perturbation it models
the reward change per unit of ``time_attr`` over an interval as a function of ``[time,
reward at its start, hyperparameters]`` with a Gaussian process whose kernel decays with
time difference (TV-GP-UCB, Bogunovic et al. 2016), and picks the hyperparameters that
maximise the upper confidence bound at the donor's latest interval. A second GP, padded
with the points already picked this round, discourages sending two trials to the same place.

The acquisition is GP-UCB, ``mean + kappa * std``, as in the PB2 paper (Ray's ``UCB`` adds
``kappa * variance``, which explores less where the standardised std is below 1). The GP has
a white-noise term and a lengthscale of at most 1 (inputs are normalised); Ray's has
neither. Explored values stay float64 inside ``hyperparam_bounds`` (Ray casts them to
float32, so a value at a bound can fall just outside it: 0.10000000149 for 0.1).

The GP sees only the latest :data:`WINDOW` intervals (Ray keeps 1,000 and picks a length of
at least 200 by likelihood, refitting the GP for each candidate length), so one decision
costs the same however long the experiment has run; with the time-varying kernel older
intervals carry little weight anyway. An interval is measured only along one stretch of
training: from a checkpoint (a trial's own, or the donor's it was given at an exploit) to
the next perturbation point, with the same hyperparameters.

poptune extra (PB2-Mix, Parker-Holder et al. 2021): ``hyperparam_bounds`` may also hold
search-space domains, integer ones (``tune.randint``) and categorical ones (``tune.choice``);
categories are chosen first by a time-varying exponential-weights bandit, then the GP picks
the continuous values given them (see :mod:`poptune.schedulers.pb2_mix`).

scikit-learn is imported only when a ``PB2`` is created (``pip install 'poptune[pb2]'``).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from typing import Any, Callable, Mapping

from poptune._validation import bad_value
from poptune._imports import require
from poptune.experiment.trial import Trial
from poptune.schedulers.pb2_mix import Param, category_probabilities, choose_category, parse_bounds
from poptune.schedulers.pbt import PopulationBasedTraining, _summarize, _TrialState

__all__ = ["PB2", "WINDOW"]

#: how many of the latest measured intervals the GP is fitted on (its cost is cubic in this)
WINDOW = 100

logger = logging.getLogger(__name__)

Key = tuple  # path of a (possibly nested) hyperparameter, e.g. ("optim", "lr")


def _get(config: Mapping[str, Any], key: Key) -> Any:
    for part in key:
        config = config[part]
    return config


def _set(config: dict, key: Key, value: Any) -> None:
    for part in key[:-1]:
        config = config.setdefault(part, {})
    config[key[-1]] = value


_KERNEL_CLASS: Any = None


def _tv_kernel_class() -> Any:
    """sklearn kernel ``variance * exp(-|x - x'|^2 / lengthscale) * (1 - eps)^(|t - t'| / 2)``
    with time in column 0 (built lazily so sklearn is imported only for PB2)."""
    global _KERNEL_CLASS
    if _KERNEL_CLASS is not None:
        return _KERNEL_CLASS
    import numpy as np
    from scipy.spatial.distance import cdist
    from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

    class TimeVaryingSquaredExp(Kernel):  # type: ignore[misc]
        def __init__(
            self,
            variance: float = 1.0,
            lengthscale: float = 1.0,
            epsilon: float = 0.1,
            variance_bounds: tuple = (1e-5, 1e5),
            lengthscale_bounds: tuple = (1e-5, 1.0),
            epsilon_bounds: tuple = (1e-5, 0.5),
        ) -> None:
            self.variance = variance
            self.lengthscale = lengthscale
            self.epsilon = epsilon
            self.variance_bounds = variance_bounds
            self.lengthscale_bounds = lengthscale_bounds
            self.epsilon_bounds = epsilon_bounds

        # sklearn orders hyperparameters by attribute name: epsilon, lengthscale, variance
        @property
        def hyperparameter_epsilon(self) -> Any:
            return Hyperparameter("epsilon", "numeric", self.epsilon_bounds)

        @property
        def hyperparameter_lengthscale(self) -> Any:
            return Hyperparameter("lengthscale", "numeric", self.lengthscale_bounds)

        @property
        def hyperparameter_variance(self) -> Any:
            return Hyperparameter("variance", "numeric", self.variance_bounds)

        def __call__(self, X: Any, Y: Any = None, eval_gradient: bool = False) -> Any:
            X = np.atleast_2d(X)
            Z = X if Y is None else np.atleast_2d(Y)
            dt = np.abs(X[:, :1] - Z[:, :1].T)
            d2 = cdist(X[:, 1:], Z[:, 1:], "sqeuclidean")
            K = self.variance * np.exp(-d2 / self.lengthscale) * (1 - self.epsilon) ** (0.5 * dt)
            if not eval_gradient:
                return K
            if Y is not None:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            d_eps = -K * 0.5 * dt * self.epsilon / (1 - self.epsilon)
            d_len = K * d2 / self.lengthscale
            return K, np.stack([d_eps, d_len, K], axis=2)  # d/d log(theta)

        def diag(self, X: Any) -> Any:
            return np.full(np.atleast_2d(X).shape[0], float(self.variance))

        def is_stationary(self) -> bool:
            return False

    _KERNEL_CLASS = TimeVaryingSquaredExp
    return _KERNEL_CLASS


def _normalize(data: Any, wrt: Any) -> Any:
    import numpy as np

    low, high = np.min(wrt, axis=0), np.max(wrt, axis=0)
    return (data - low) / (high - low + 1e-8)


def _standardize(y: Any) -> Any:
    import numpy as np

    return np.clip((y - np.mean(y)) / (np.std(y) + 1e-8), -2, 2)


def _fit_gp(X: Any, y: Any, seed: int) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel

    kernel = _tv_kernel_class()() + WhiteKernel(noise_level=0.1, noise_level_bounds=(1e-6, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on tiny data sets is expected
        try:
            return GaussianProcessRegressor(kernel, alpha=1e-8, random_state=seed).fit(X, y)
        except (ValueError, ArithmeticError):  # ill-conditioned: more jitter
            return GaussianProcessRegressor(kernel, alpha=1e-3, random_state=seed).fit(X, y)


class _Posterior:
    """Fast single-point GP prediction from a fitted ``GaussianProcessRegressor`` (its
    ``predict`` re-validates input on every call, which dominates the acquisition search)."""

    def __init__(self, gp: Any) -> None:
        self.kernel, self.X, self.alpha, self.L = gp.kernel_, gp.X_train_, gp.alpha_, gp.L_

    def mean_std(self, x: Any) -> tuple[Any, Any]:
        """Posterior mean and standard deviation at the rows of ``x``."""
        import numpy as np
        from scipy.linalg import solve_triangular

        k = self.kernel(x, self.X)  # (m, n); the white-noise term is 0 off the diagonal
        v = solve_triangular(self.L, k.T, lower=True, check_finite=False)
        var = self.kernel.diag(x) - np.sum(v * v, axis=0)
        return (k @ self.alpha).reshape(-1), np.sqrt(np.maximum(var, 0.0))


def _limits(X: Any, bounds: Any) -> Any:
    """(2, d) normalisation range: observed min/max of time and reward, then the bounds."""
    import numpy as np

    seen = X[:, :2]
    return np.concatenate([np.vstack([seen.min(axis=0), seen.max(axis=0)]), bounds.T], axis=1)


def _select_config(
    X: Any, y: Any, current: Any, newpoint: Any, bounds: Any, gen: Any, fixed_hp: Any = None,
    region: tuple[Any, float] | None = None,
) -> Any:
    """Fit the GP on the latest :data:`WINDOW` rows of ``(X, y)`` and return the
    hyperparameters maximising UCB at ``newpoint``.

    ``X`` columns: time (the interval's end), reward at its start, hyperparameters; ``y``:
    reward change per unit time; ``newpoint``: the time and reward to predict at;
    ``bounds``: (k, 2) array of [low, high]; ``current``: hyperparameters already chosen this
    round, or None; ``fixed_hp``: values (already in [0, 1]) of the first hyperparameter
    columns, held fixed (the chosen categories' one-hot columns); only the remaining columns
    are searched; ``region``: ``(center, r)``, the searched columns' values to stay near and
    the half-width of the box around them as a fraction of each bound (None: whole bounds).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=1):  # small matrices: BLAS threads would only contend
        return _select_config_serial(X, y, current, newpoint, bounds, gen, fixed_hp, region)


def _select_config_serial(
    X: Any, y: Any, current: Any, newpoint: Any, bounds: Any, gen: Any, fixed_hp: Any = None,
    region: tuple[Any, float] | None = None,
) -> Any:
    import numpy as np
    from scipy.optimize import minimize

    seed = int(gen.integers(2**31))
    X, y = X[-WINDOW:], y[-WINDOW:]
    Xn = _normalize(X, _limits(X, bounds))
    yn = _standardize(y)
    point = _normalize(newpoint, X[:, :2])  # time and reward of the donor's latest interval
    nfix = 0 if fixed_hp is None else len(fixed_hp)
    fixed = np.concatenate([point, np.asarray(fixed_hp, dtype=float)]) if nfix else point
    mean_gp = var_gp = _Posterior(_fit_gp(Xn, yn, seed))
    if current is not None and len(current):
        cur = _normalize(np.asarray(current, dtype=float), bounds.T)
        cur = np.hstack([np.tile(point, (cur.shape[0], 1)), cur])
        padded = np.vstack([Xn, cur]), np.concatenate([yn, np.zeros(len(cur))])
        var_gp = _Posterior(_fit_gp(*padded, seed))

    kappa = math.sqrt(0.2 + max(0.0, math.log(0.4 * Xn.shape[0])))

    def ucb(x: Any) -> Any:
        points = np.hstack([np.tile(fixed, (x.shape[0], 1)), x])
        return mean_gp.mean_std(points)[0] + kappa * var_gp.mean_std(points)[1]

    # Score 256 random points at once, then polish the 3 best with L-BFGS-B.
    dim = bounds.shape[0] - nfix
    lo, hi = np.zeros(dim), np.ones(dim)
    if region is not None:  # a trust region around the donor's values
        center = _normalize(np.asarray(region[0], dtype=float), bounds[nfix:].T)
        lo, hi = np.clip(center - region[1], 0.0, 1.0), np.clip(center + region[1], 0.0, 1.0)
    candidates = lo + gen.uniform(0, 1, (256, dim)) * (hi - lo)
    values = ucb(candidates)
    best = int(np.argmax(values))
    best_x, best_val = candidates[best], -float(values[best])
    for start in candidates[np.argsort(-values)[:3]]:
        res = minimize(lambda x: -float(ucb(x.reshape(1, -1))[0]), start, method="L-BFGS-B",
                       bounds=list(zip(lo, hi)), options={"maxiter": 200, "maxfun": 200})
        if res.fun < best_val:
            best_x, best_val = res.x, res.fun
    best_x = np.clip(best_x, lo, hi)
    return bounds[nfix:, 0] + best_x * (bounds[nfix:, 1] - bounds[nfix:, 0])


class PB2(PopulationBasedTraining):
    """Population Based Bandits: PBT with a GP-bandit explore step, for continuous, integer
    and categorical hyperparameters.

    Args:
        time_attr: monotonically increasing progress attribute.
        metric: the objective (or from ``TuneConfig``).
        mode: ``"min"`` or ``"max"`` (or from ``TuneConfig``).
        perturbation_interval: perturb every this many units of ``time_attr``.
        hyperparam_bounds: ``{name: [low, high]}`` as in Ray, nested dicts allowed; poptune
            also accepts bounded domains: ``tune.uniform``/``loguniform``/``quniform``
            (continuous; log domains modelled in log space), ``tune.randint``/``lograndint``/
            ``qrandint`` (integers) and ``tune.choice([...])`` (categorical, chosen by a
            bandit, PB2-Mix). Missing values are sampled (uniform in ``[low, high]``, or from
            the domain); with ``[low, high]`` ints stay ints.
        quantile_fraction: top/bottom fraction of the population, in [0, 0.5].
        log_config: the runner writes the ``pbt_*`` policy logs when True.
        require_attrs: raise when a result lacks ``time_attr`` or ``metric``.
        synch: synchronous PBT (see :class:`PopulationBasedTraining`).
        custom_explore_fn: ``f(config) -> config`` applied to the GP's suggestion.
        seed: seed for every random choice, GP restarts and acquisition starts.
        trust_region: poptune only. ``None`` (default, as Ray): the GP-UCB acquisition is
            maximised over the whole of each continuous bound. A number ``r`` in (0, 1]:
            only within ``r`` times each bound's width around the donor's value (a trust
            region, as in BG-PBT): UCB's uncertainty peaks at the bounds' edges, and with a
            small, noisy population the whole-box argmax often lands there.

    Example:
        >>> import poptune as tune
        >>> from poptune.schedulers.pb2 import PB2
        >>> pb2 = PB2(metric="mean_accuracy", mode="max", perturbation_interval=20,
        ...           hyperparam_bounds={"lr": [0.0001, 0.1]}, seed=0)
        >>> pb2.debug_string()
        'PopulationBasedTraining: 0 checkpoints, 0 perturbs'
        >>> mixed = PB2(metric="mean_accuracy", mode="max", perturbation_interval=20, seed=0,
        ...             hyperparam_bounds={"lr": tune.loguniform(1e-4, 1e-1),
        ...                                "batch_size": tune.randint(16, 257),
        ...                                "optimizer": tune.choice(["adam", "sgd"])})
    """

    #: the history's length that triggers :meth:`_prune` (a class default: a PB2 pickled
    #: before it existed, in an older experiment's tuner.pkl, still has it)
    _prune_at: int = 4 * WINDOW

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        hyperparam_bounds: Mapping[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        custom_explore_fn: Callable[[dict], dict] | None = None,
        *,
        seed: int | None = None,
        trust_region: float | None = None,
    ) -> None:
        require("sklearn", "PB2")
        if trust_region is not None and (
                isinstance(trust_region, bool) or not isinstance(trust_region, (int, float))
                or not 0 < trust_region <= 1):
            raise bad_value("trust_region", trust_region,
                            "None or a fraction of each bound's width in (0, 1]")
        params = parse_bounds(hyperparam_bounds)
        assert hyperparam_bounds is not None
        super().__init__(
            time_attr=time_attr,
            metric=metric,
            mode=mode,
            perturbation_interval=perturbation_interval,
            hyperparam_mutations=hyperparam_bounds,
            quantile_fraction=quantile_fraction,
            resample_probability=0.0,
            custom_explore_fn=custom_explore_fn,
            log_config=log_config,
            require_attrs=require_attrs,
            synch=synch,
            seed=seed,
        )
        self._hyperparam_bounds = dict(hyperparam_bounds)
        self._trust_region = None if trust_region is None else float(trust_region)
        self._params: list[Param] = params
        #: one row per perturbation point, and one per exploit for the checkpoint the target
        #: restarts from: (trial_id, time, [GP coordinates], reward, stretch); a categorical's
        #: coordinate is its category's index; ``stretch`` counts the trial's exploits, so a
        #: reward change is measured only within one stretch of training
        self._data: list[tuple[str, float, list[float], float, int]] = []
        self._prune_at = 4 * WINDOW
        self._stretch: dict[str, int] = {}
        self._current: list[list[float]] | None = None
        self._last_exploration_time = 0.0

    def _sample_missing(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Bounded hyperparameters ``config`` lacks, sampled (without touching ``config``),
        then PBT's sampling of the rest."""
        work: dict[str, Any] | None = None
        filled: dict[str, Any] = {}
        for param in self._params:
            try:
                _get(work if work is not None else config, param.key)
            except (KeyError, TypeError):
                value = param.sample(self._rng)
                if work is None:
                    work = copy.deepcopy(dict(config))
                _set(work, param.key, value)
                filled[param.name] = value
        filled.update(super()._sample_missing(work if work is not None else config))
        return filled

    def _coordinates(self, config: Mapping[str, Any]) -> list[float]:
        return [p.to_gp(_get(config, p.key)) for p in self._params]

    def _save_trial_state(
        self, state: _TrialState, time: float, result: dict[str, Any], trial: Trial
    ) -> float:
        score = super()._save_trial_state(state, time, result, trial)
        self._data.append((trial.trial_id, float(time), self._coordinates(trial.config),
                           float(score), self._stretch.get(trial.trial_id, 0)))
        if len(self._data) > self._prune_at:
            self._prune()
        return score

    def _measured(self) -> list[tuple[tuple[str, float, float, list[float], float], int, int]]:
        """Every measured interval, oldest first, with the indices in ``_data`` of the rows
        that end and start it."""
        order = sorted(range(len(self._data)), key=lambda i: self._data[i][1])  # stable
        last: dict[tuple[str, int], int] = {}
        measured = []
        for i in order:
            trial_id, time, values, reward, stretch = self._data[i]
            group = (trial_id, stretch)
            if group in last:
                prev = self._data[last[group]]
                if time > prev[1]:
                    rate = (reward - prev[3]) / (time - prev[1])
                    measured.append(((trial_id, time, prev[3], values, rate), i, last[group]))
            last[group] = i
        return measured

    def _samples(self) -> list[tuple[str, float, float, list[float], float]]:
        """The latest :data:`WINDOW` measured intervals, oldest first: (trial, end time,
        reward at the start, coordinates, reward change per unit time)."""
        return [m[0] for m in self._measured()[-WINDOW:]]

    def _prune(self) -> None:
        """Drop the rows no later decision reads, so the history (and the saved state) stays
        bounded however long the run: kept are the two rows of each interval in the window
        (an interval older than the window never comes back into it: later ones only add
        to its end) and each trial's latest row (the start of its next interval, and of an
        exploit's ``_start``). Kept rows keep their order, so ties sort as before."""
        keep = {i for _, end, start in self._measured()[-WINDOW:] for i in (end, start)}
        latest: dict[str, int] = {}
        for i, row in enumerate(self._data):
            latest[row[0]] = i
        keep.update(latest.values())
        self._data = [row for i, row in enumerate(self._data) if i in keep]
        self._prune_at = max(4 * WINDOW, 2 * len(self._data))

    def _start(self, donor: Trial) -> tuple[float, float] | None:
        """Time and score of the checkpoint an exploit of ``donor`` restores (the donor's
        latest: for a completed donor, its last one, not a perturbation point)."""
        result = self._states[donor.trial_id].ckpt_result or {}
        time, value = result.get(self._time_attr), result.get(self._metric or "")
        if isinstance(time, (int, float)) and isinstance(value, (int, float)):
            return float(time), (self._metric_op or 1.0) * float(value)
        rows = [r for r in self._data if r[0] == donor.trial_id]
        return (rows[-1][1], rows[-1][3]) if rows else None

    def _encode(self, values: list[float]) -> list[float]:
        """GP inputs for ``values``: one-hot columns of the categoricals, then the rest."""
        onehot: list[float] = []
        rest: list[float] = []
        for param, value in zip(self._params, values):
            if param.is_categorical:
                onehot += [1.0 if i == int(value) else 0.0 for i in range(len(param.categories))]
            else:
                rest.append(value)
        return onehot + rest

    def _gp_bounds(self) -> Any:
        import numpy as np

        rows = [[0.0, 1.0] for p in self._params if p.is_categorical for _ in p.categories]
        rows += [[p.low, p.high] for p in self._params if not p.is_categorical]
        return np.array(rows, dtype=float)

    def _choose(self, donor: Trial, samples: list, gen: Any) -> list[float]:
        """GP coordinates for the explored config: the UCB argmax at the input of the donor's
        latest measured interval (as Ray: where the GP has data; the clone's own state, at
        the edge of the data in time and reward, is where the GP knows least, and UCB there
        is mostly variance, so it picks the bounds)."""
        import numpy as np

        values = self._coordinates(donor.config)
        latest = max(s[1] for s in samples)
        picked = self._current or []
        for i, param in enumerate(self._params):  # categories first, by the bandit
            if param.is_categorical:
                probs = category_probabilities(
                    [(s[1], int(s[3][i]), s[4]) for s in samples], len(param.categories),
                    latest, float(self._perturbation_interval), [int(c[i]) for c in picked])
                values[i] = float(choose_category(probs, gen))
        continuous = [i for i, p in enumerate(self._params) if not p.is_categorical]
        if not continuous:
            return values
        X = np.array([[s[1], s[2], *self._encode(s[3])] for s in samples], dtype=float)
        y = np.array([s[4] for s in samples], dtype=float)
        own = [s for s in samples if s[0] == donor.trial_id][-1]
        newpoint = np.array([own[1], own[2]], dtype=float)
        encoded = self._encode(values)
        nfix = len(encoded) - len(continuous)
        current = [self._encode(c) for c in self._current] if self._current else None
        region = None if self._trust_region is None else (encoded[nfix:], self._trust_region)
        suggestion = _select_config(X, y, current, newpoint, self._gp_bounds(), gen,
                                    encoded[:nfix] if nfix else None, region)
        for i, x in zip(continuous, suggestion):
            values[i] = float(x)
        return values

    def _get_new_config(self, trial: Trial, donor: Trial) -> tuple[dict[str, Any], str]:
        import numpy as np

        if self._data and max(r[1] for r in self._data) > self._last_exploration_time:
            self._current = None  # a new round: trials still running are not penalised
        new_config = copy.deepcopy(donor.config)
        samples, start = self._samples(), self._start(donor)
        values = self._coordinates(donor.config)
        if start is None or not any(s[0] == donor.trial_id for s in samples):
            # as Ray: the GP decides once the donor has a measured interval of its own
            logger.debug("PB2: no reward-change data for trial %s yet; cloning its config", donor)
        else:
            gen = np.random.default_rng(self._rng.getrandbits(64))
            values = []
            for param, x in zip(self._params, self._choose(donor, samples, gen)):
                value = param.from_gp(x, _get(donor.config, param.key))
                _set(new_config, param.key, value)
                values.append(param.to_gp(value))
        # the target starts a new stretch: the donor's checkpoint, the new hyperparameters
        self._stretch[trial.trial_id] = self._stretch.get(trial.trial_id, 0) + 1
        if start is not None:
            self._data.append((trial.trial_id, start[0], values, start[1],
                               self._stretch[trial.trial_id]))
        latest = max(r[1] for r in self._data) if self._data else 0.0
        if latest > self._last_exploration_time or self._current is None:
            self._last_exploration_time = latest
            self._current = [values]
        else:
            self._current.append(values)
        if self._custom_explore_fn is not None:
            new_config = self._custom_explore_fn(new_config)
        summary = _summarize(
            {k: donor.config[k] for k in self._hyperparam_bounds if k in donor.config},
            {k: new_config[k] for k in self._hyperparam_bounds if k in new_config},
            {},
        )
        return new_config, summary or "No hyperparameters mutated."

    def save_state(self) -> dict[str, Any]:
        state = super().save_state()
        state["pb2"] = {
            "data": list(self._data),
            "stretch": dict(self._stretch),
            "current": copy.deepcopy(self._current),
            "last_exploration_time": self._last_exploration_time,
        }
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        pb2 = state.get("pb2", {})
        # rows saved before stretches were recorded: one stretch per trial
        self._data = [tuple(r) if len(r) == 5 else (*r, 0) for r in pb2.get("data", [])]
        self._stretch = dict(pb2.get("stretch", {}))
        self._current = copy.deepcopy(pb2.get("current"))
        self._last_exploration_time = pb2.get("last_exploration_time", 0.0)
