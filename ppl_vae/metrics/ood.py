"""Out-of-domain detection quality as the area under the ROC curve.

Scores follow the package convention (e.g. ``model.ood_score``): higher means more
out-of-domain. AUROC is the probability that a random out-of-domain point scores
higher than a random in-domain point, ties counting one half (Hanley & McNeil 1982);
1 is perfect separation, 0.5 chance, 0 perfectly reversed.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def _check_scores(name: str, scores) -> np.ndarray:
    if scores is None:
        raise ValueError(f"{name}=None is invalid: pass a 1-D array of scores")
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    arr = np.asarray(scores)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}: pass a 1-D array, one score per datapoint")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one score")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} has dtype {arr.dtype}: pass real-valued scores")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int(np.nonzero(~np.isfinite(arr))[0][0])
        raise ValueError(
            f"{name} contains NaN or inf (first at index {bad}, value {arr[bad]}): "
            "drop or clip those scores"
        )
    return arr


def ood_auroc(scores_in, scores_out) -> float:
    """AUROC of separating out-of-domain from in-domain points by their scores.

    Parameters
    ----------
    scores_in : array ``[N_in]``
        Scores of in-domain points (negatives).
    scores_out : array ``[N_out]``
        Scores of out-of-domain points (positives); higher = more out-of-domain.

    Returns
    -------
    float
        Area under the ROC curve, in [0, 1].
    """
    s_in = _check_scores("scores_in", scores_in)
    s_out = _check_scores("scores_out", scores_out)
    labels = np.concatenate([np.zeros(s_in.size), np.ones(s_out.size)])
    return float(roc_auc_score(labels, np.concatenate([s_in, s_out])))
