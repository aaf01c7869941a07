"""Concrete studies, one module per question: ``ppl_vae/studies/<name>.py``.

Each module states its question and hypothesis in its docstring and defines a
module-level ``STUDY = ppl_vae.study.Study(...)``; ``ppl_vae.study.run("<name>")``
finds it by module name.
"""
