"""``ray.air.integrations``: :mod:`~poptune.air.integrations.mlflow`,
:mod:`~poptune.air.integrations.wandb` and :mod:`~poptune.air.integrations.keras` (Ray's
Comet integration has no counterpart here)."""
