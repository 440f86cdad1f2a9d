"""``ray.air.integrations``: :mod:`~poptune.air.integrations.mlflow`,
:mod:`~poptune.air.integrations.wandb`, :mod:`~poptune.air.integrations.comet` and
:mod:`~poptune.air.integrations.keras`."""
