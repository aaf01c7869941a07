"""Every shipped study has the three sizes, a protocol that says how far each is from the
paper, and paper configurations the trial accepts (at least the default grid's keys)."""

import re

import pytest

import ppl_vae as pv


@pytest.mark.parametrize("name", pv.study.available_studies())
def test_study_has_small_default_and_paper_sizes_and_a_protocol(name):
    study = pv.study.get_study(name)
    assert study.sizes == ("small", "default", "paper")
    assert re.search(r"\bpaper\b", study.protocol, flags=re.IGNORECASE), study.protocol
    keys = set(study.grid[0])
    for i, config in enumerate(study.paper_grid):
        assert keys <= set(config), f"paper_grid[{i}] lacks {sorted(keys - set(config))}"
