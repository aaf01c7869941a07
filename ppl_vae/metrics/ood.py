"""Out-of-domain detection quality as the area under the ROC curve.

Scores follow the package convention (e.g. ``model.ood_score``): higher means more
out-of-domain. AUROC is the probability that a random out-of-domain point scores
higher than a random in-domain point, ties counting one half (Hanley & McNeil 1982);
1 is perfect separation, 0.5 chance, 0 perfectly reversed.
"""

from __future__ import annotations

import numpy as np

from ppl_vae.metrics._arrays import scores


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

    Examples
    --------
    >>> from ppl_vae.metrics import ood_auroc
    >>> ood_auroc([0.0, 1.0], [2.0, 3.0])                   # every outlier scores higher
    1.0
    >>> ood_auroc([0.0, 2.0], [1.0, 3.0])                   # 3 of 4 pairs ordered
    0.75
    """
    # sklearn is imported on use, not with ppl_vae: a fresh study worker starts sooner.
    from sklearn.metrics import roc_auc_score

    s_in = scores("scores_in", scores_in)
    s_out = scores("scores_out", scores_out)
    labels = np.concatenate([np.zeros(s_in.size), np.ones(s_out.size)])
    return float(roc_auc_score(labels, np.concatenate([s_in, s_out])))
