"""pv.save / pv.load: identical outputs, versions, and refusal of anything else."""

import os
import pickle

import pytest
import torch

import ppl_vae as pv
from ppl_vae import checkpoint as ckpt


def test_save_load_gives_identical_outputs(tmp_path):
    model = pv.build("vae", data_dim=10, latent_dim=3, guide={"covariance": "full"}, seed=4)
    x = (torch.rand(8, 10) > 0.5).float()
    path = pv.save(model, tmp_path / "m.pt")
    again = pv.load(path)
    assert again.spec == model.spec
    assert torch.equal(pv.infer.elbo(again, x, num_particles=3, seed=1),
                       pv.infer.elbo(model, x, num_particles=3, seed=1))
    assert torch.equal(again.sample(4, seed=2), model.sample(4, seed=2))
    stored = ckpt.read(path)
    assert stored["versions"]["ppl_vae"] == pv.__version__ and "torch" in stored["versions"]


def test_gmm_round_trip(tmp_path):
    model = pv.build("gmm", data_dim=3, num_components=2)
    x = torch.randn(6, 3)
    again = pv.load(pv.save(model, tmp_path / "g.pt"))
    assert torch.equal(pv.infer.exact_log_likelihood(again, x), pv.infer.exact_log_likelihood(model, x))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump(_RunsCode(), handle)
    with pytest.raises(ValueError, match="not a ppl_vae checkpoint"):
        pv.load(path)
    assert not (tmp_path / "pwned_by_pickle").exists()


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_other_files_are_value_errors(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a ppl_vae checkpoint"):
        pv.load(path)


def test_a_plain_torch_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="no 'ppl_vae.checkpoint/1' marker"):
        pv.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint file"):
        pv.load(tmp_path / "nope.pt")


def test_load_onto_a_device(tmp_path):
    model = pv.build("vae", data_dim=10, latent_dim=3, seed=4)
    path = pv.save(model, tmp_path / "m.pt")
    again = pv.load(path, device="auto")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(again.parameters()).device.type == want
    with pytest.raises(ValueError, match="device="):
        pv.load(path, device="nonsense")
