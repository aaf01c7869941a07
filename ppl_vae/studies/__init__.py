"""Concrete studies, one module per question: ``ppl_vae/studies/<name>.py``.

Each module states its question and hypothesis in its docstring and defines a
module-level ``STUDY = ppl_vae.study.Study(...)``; ``ppl_vae.study.run("<name>")``
finds it by module name.

``__all__`` names the study modules (what ``ppl_vae.study.available_studies()`` lists);
none is imported until it is asked for.
"""

__all__ = [
    "disentanglement",
    "elbo_vs_is",
    "gmm_vs_em",
    "inference_gaps",
    "prior_vs_aggregate",
    "rdvae_ood",
    "sbc",
]
