"""Names of the keys poptune fills in every result (``ray.tune.result`` counterpart).

A callback may set ``result[SHOULD_CHECKPOINT] = True`` in ``on_trial_result`` to have a class
trainable save a checkpoint right after that result.
"""

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
