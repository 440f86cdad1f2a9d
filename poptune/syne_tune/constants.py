"""Syne Tune's ``syne_tune.constants``: the names of its result columns, files and
settings, as Syne Tune defines them (0.15, plus those of earlier releases).

Example:
    >>> ST_TUNER_TIME, ST_WORKER_TIME, ST_RESULTS_DATAFRAME_FILENAME
    ('st_tuner_time', 'st_worker_time', 'results.csv.zip')
"""

from __future__ import annotations

#: environment variable overriding the folder experiments are written to
SYNE_TUNE_ENV_FOLDER = "SYNETUNE_FOLDER"
#: the folder under ``~`` used when :data:`SYNE_TUNE_ENV_FOLDER` is not set
SYNE_TUNE_DEFAULT_FOLDER = "syne-tune"

ST_TUNER_CREATION_TIMESTAMP = "st_tuner_creation_timestamp"
ST_TUNER_START_TIMESTAMP = "st_tuner_start_timestamp"

#: number of times the reporter was called
ST_WORKER_ITER = "st_worker_iter"
#: time stamp when the worker reported
ST_WORKER_TIMESTAMP = "st_worker_timestamp"
#: time since the reporter was created
ST_WORKER_TIME = "st_worker_time"
#: estimate of the dollar cost spent so far
ST_WORKER_COST = "st_worker_cost"

ST_TRIAL_ID = "trial_id"
ST_TUNER_TIMESTAMP = "st_tuner_timestamp"
ST_TUNER_TIME = "st_tuner_time"
ST_DECISION = "st_decision"
ST_STATUS = "st_status"

#: config key of a trial's checkpoint directory
ST_CHECKPOINT_DIR = "st_checkpoint_dir"
#: config key of a trial's config JSON file
ST_CONFIG_JSON_FNAME_ARG = "st_config_json_filename"
#: ``upload_dir`` name of a ``RemoteTuner``
ST_REMOTE_UPLOAD_DIR_NAME = "tuner"
#: the results table (``StoreResultsCallback``; poptune's tuner always writes it)
ST_RESULTS_DATAFRAME_FILENAME = "results.csv.zip"
#: the tuner's metadata file
ST_METADATA_FILENAME = "metadata.json"
#: the pickled tuner (``Tuner.save``; poptune.Tuner.restore reads its own ``tuner.pkl``)
ST_TUNER_DILL_FILENAME = "tuner.dill"
#: datetime format of experiment names
ST_DATETIME_FORMAT = "%Y-%m-%d-%H-%M-%S"
#: default ``Tuner(sleep_time=...)``
TUNER_DEFAULT_SLEEP_TIME = 5.0
#: tag of the lines :class:`~poptune.syne_tune.Reporter` prints
ST_METRIC_TAG = "tune-metric"

# earlier releases
#: the d2l era's name of :data:`ST_METRIC_TAG`
ST_SAGEMAKER_METRIC_TAG = "tune-metric"
MAX_METRICS_SUPPORTED_BY_SAGEMAKER = 40
ST_INSTANCE_TYPE = "st_instance_type"
ST_INSTANCE_COUNT = "st_instance_count"
