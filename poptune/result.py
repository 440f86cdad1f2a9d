"""Names of the keys poptune fills in every result (``ray.tune.result`` counterpart), and the
one definition of which keys are automatic (for stoppers, the progress output, ``Result``
and the dashboard).

A callback may set ``result[SHOULD_CHECKPOINT] = True`` in ``on_trial_result`` to have a class
trainable save a checkpoint right after that result.

Example:
    >>> FILLED_RESULT_KEYS <= AUTO_RESULT_KEYS, NON_METRIC_KEYS <= AUTO_RESULT_KEYS
    (True, True)
    >>> TRAINING_ITERATION in NON_METRIC_KEYS
    False
"""

from __future__ import annotations

TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTAMP = "timestamp"
DATE = "date"
PID = "pid"
HOSTNAME = "hostname"
NODE_IP = "node_ip"
TRIAL_ID = "trial_id"
EXPERIMENT_TAG = "experiment_tag"
ITERATIONS_SINCE_RESTORE = "iterations_since_restore"
TIME_SINCE_RESTORE = "time_since_restore"
DONE = "done"
CONFIG = "config"
CHECKPOINT_DIR_NAME = "checkpoint_dir_name"
SHOULD_CHECKPOINT = "should_checkpoint"
TIMESTEPS_TOTAL = "timesteps_total"
EPISODE_REWARD_MEAN = "episode_reward_mean"
MEAN_ACCURACY = "mean_accuracy"
MEAN_LOSS = "mean_loss"
DEFAULT_METRIC = "_metric"
WARMUP_TIME = "warmup_time"
EXPERIMENT_ID = "experiment_id"
TIMESTEPS_THIS_ITER = "timesteps_this_iter"
TIMESTEPS_SINCE_RESTORE = "timesteps_since_restore"
EPISODES_THIS_ITER = "episodes_this_iter"
EPISODES_TOTAL = "episodes_total"

#: Ray's names of the files in a trial directory (``ray.tune.result``), for scripts that read
#: them; poptune writes the same files
EXPR_PARAM_FILE = "params.json"
EXPR_PARAM_PICKLE_FILE = "params.pkl"
EXPR_RESULT_FILE = "result.json"
EXPR_PROGRESS_FILE = "progress.csv"
EXPR_ERROR_FILE = "error.txt"
EXPR_ERROR_PICKLE_FILE = "error.pkl"
#: ``progress.csv``'s prefix of config columns (``config/lr``), and Ray's other constants
CONFIG_PREFIX = "config"
DEFAULT_EXPERIMENT_NAME = "default"
DEFAULT_RESULT_KEYS = (TRAINING_ITERATION, TIME_TOTAL_S, MEAN_ACCURACY, MEAN_LOSS)
DEBUG_METRICS = (TRIAL_ID, EXPERIMENT_ID, DATE, TIMESTAMP, PID, HOSTNAME, NODE_IP, CONFIG)
DEFAULT_EXPERIMENT_INFO_KEYS = ("trainable_name", EXPERIMENT_TAG, TRIAL_ID)

#: The keys poptune puts into every result (the session and the runner), so a ``stop``
#: criterion may always name them.
FILLED_RESULT_KEYS = frozenset({
    TRAINING_ITERATION, TIME_THIS_ITER_S, TIME_TOTAL_S, TIMESTAMP, DATE, PID, HOSTNAME, NODE_IP,
    TRIAL_ID, ITERATIONS_SINCE_RESTORE, TIME_SINCE_RESTORE, DONE, CHECKPOINT_DIR_NAME, CONFIG,
    EXPERIMENT_TAG,
})
#: Keys the framework fills in (poptune, Ray or a Ray library such as RLlib): never inferred
#: as user metrics by the progress output, hidden from ``repr(Result)`` (Ray hides its
#: ``AUTO_RESULT_KEYS`` and the reporter's skipped keys) and left out of the keys the strict
#: metric check lists as reported.
AUTO_RESULT_KEYS = FILLED_RESULT_KEYS | frozenset({
    TIMESTEPS_THIS_ITER, TIMESTEPS_SINCE_RESTORE, TIMESTEPS_TOTAL, EPISODES_THIS_ITER,
    EPISODES_TOTAL, EXPERIMENT_ID, SHOULD_CHECKPOINT, WARMUP_TIME,
})
#: Bookkeeping keys that are no metric worth plotting (the dashboard's metric list); the
#: counters and times (``training_iteration``, ``time_total_s``, ...) are plotted.
NON_METRIC_KEYS = frozenset({
    DONE, TIMESTAMP, PID, TRIAL_ID, DATE, HOSTNAME, NODE_IP, EXPERIMENT_TAG, CHECKPOINT_DIR_NAME,
    SHOULD_CHECKPOINT,
})


def count_steps(result: dict, timesteps_total: float | None,
                episodes_total: float | None) -> tuple[float | None, float | None, float]:
    """Ray's step totals (``Trainable.train()``): add the result's ``timesteps_this_iter``/
    ``episodes_this_iter`` to the totals, fill ``timesteps_total``/``episodes_total`` in
    unless the result reports them, and return ``(timesteps_total, episodes_total, steps
    this iteration)`` (a total stays None until some result counts it).

    Example:
        >>> r = {"timesteps_this_iter": 10}
        >>> count_steps(r, 20, None), r["timesteps_total"]
        ((30, None, 10), 30)
    """
    steps, episodes = result.get(TIMESTEPS_THIS_ITER), result.get(EPISODES_THIS_ITER)
    if steps is not None:
        timesteps_total = (timesteps_total or 0) + steps
    if episodes is not None:
        episodes_total = (episodes_total or 0) + episodes
    if timesteps_total is not None:
        result.setdefault(TIMESTEPS_TOTAL, timesteps_total)
    if episodes_total is not None:
        result.setdefault(EPISODES_TOTAL, episodes_total)
    return timesteps_total, episodes_total, steps or 0
