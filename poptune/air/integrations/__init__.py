"""``ray.air.integrations``: :mod:`poptune.air.integrations.mlflow` and
:mod:`poptune.air.integrations.wandb` (Ray's Comet and Keras ones have no counterpart here;
Keras's callbacks are :mod:`poptune.integration.keras`)."""
