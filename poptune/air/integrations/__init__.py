"""``ray.air.integrations``: :mod:`poptune.air.integrations.mlflow` (Ray's Comet, Keras and
Weights & Biases integrations have no poptune counterpart)."""
