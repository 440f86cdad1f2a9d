"""``MyTrainableClass``: a tiny class trainable for examples and tests.

Its reward follows ``height * tanh(timestep / width)``, so higher ``width`` learns slower and
higher ``height`` ends higher; it checkpoints its timestep.

Example:
    >>> t = MyTrainableClass({"width": 10, "height": 2})
    >>> round(t.train()["episode_reward_mean"], 3)
    0.199
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from poptune.trainable import Trainable


class MyTrainableClass(Trainable):
    def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
        self.timestep = 0

    def step(self) -> dict[str, Any]:
        self.timestep += 1
        width = float(self.config.get("width", 1)) or 1.0
        value = math.tanh(self.timestep / width) * float(self.config.get("height", 1))
        return {"episode_reward_mean": value, "timesteps_total": self.timestep}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "checkpoint.json"), "w") as f:
            json.dump({"timestep": self.timestep}, f)

    def load_checkpoint(self, checkpoint: Any) -> None:
        with open(os.path.join(checkpoint, "checkpoint.json")) as f:
            self.timestep = json.load(f)["timestep"]
