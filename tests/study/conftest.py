"""Worker processes (process pool, Ray) unpickle the toy trials by module name,
``tests.study.test_study_runner``; make the repository root importable so that
works however pytest was launched (``pytest`` or ``python -m pytest``)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
