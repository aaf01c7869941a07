"""``ppl_vae.studies.__all__`` lists exactly the shipped study modules."""

import ppl_vae as pv
import ppl_vae.studies


def test_all_names_every_study_module():
    assert ppl_vae.studies.__all__ == pv.study.available_studies()
