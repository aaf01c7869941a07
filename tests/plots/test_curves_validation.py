"""training_curve draws the validation bounds of pv.fit as losses next to the training loss."""

import numpy as np
import pandas as pd

from ppl_vae import plots


def test_validation_columns_are_drawn_as_losses(tmp_path):
    steps = np.arange(1, 101)
    val = np.where(steps % 20 == 0, -(30 - steps / 10), np.nan)
    history = pd.DataFrame({"step": steps, "loss": 30 - steps / 10, "val_elbo": val})
    fig = plots.training_curve(history, path=tmp_path / "c.png")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    drawn = lines["validation loss (−ELBO)"]
    assert np.allclose(drawn.get_ydata(), -val[np.isfinite(val)])  # −bound, on validation steps
    fig = plots.training_curve(history, path=tmp_path / "d.png", validation=False)
    assert "validation loss (−ELBO)" not in {l.get_label() for l in fig.axes[0].get_lines()}
