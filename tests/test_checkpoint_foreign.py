"""Checkpoints of what ppl_vae did not build: a user's module saved with a named factory,
and specs whose parts a user registered (pv.load and the CLI's --import)."""

import textwrap

import pytest
import torch

import ppl_vae as pv
from ppl_vae import registry
from ppl_vae.cli import main

USER_MODULE = textwrap.dedent('''
    import pyro.distributions as dist
    import torch
    from torch import nn

    import ppl_vae as pv
    from ppl_vae.parts import Prior


    def make_net():
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


    @pv.register("prior", "user_laplace")
    class UserLaplace(Prior):
        def __init__(self, ctx, *, scale=1.0):
            super().__init__(ctx)
            self.scale = scale

        def distribution(self, y=None):
            zero = torch.zeros(self.latent_dim)
            return dist.Laplace(zero, zero + self.scale).to_event(1)
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "user_parts_mod.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    return importlib.import_module("user_parts_mod")


def test_a_users_module_round_trips_through_its_factory(user_module, tmp_path):
    net = user_module.make_net()
    path = tmp_path / "net.pt"
    pv.save(net, path, factory="user_parts_mod:make_net")
    back = pv.load(path, factory="user_parts_mod:make_net")
    x = torch.randn(5, 4)
    assert torch.equal(back(x), net(x))
    with pytest.raises(ValueError, match="pass pv.load\\(path, factory='user_parts_mod:make_net'\\)"):
        pv.load(path)  # the file never imports code by itself
    with pytest.raises(ValueError, match="differs from the one"):
        pv.load(path, factory="user_parts_mod:other")


@pytest.mark.parametrize("factory", ["no_colon", "a:b:c", ":make", 5])
def test_a_bad_factory_name_is_refused(user_module, tmp_path, factory):
    with pytest.raises(ValueError, match="factory=.* is invalid: pass 'package.module:function'"):
        pv.save(user_module.make_net(), tmp_path / "n.pt", factory=factory)
    assert not (tmp_path / "n.pt").exists()


def test_a_users_module_without_a_factory_is_refused_with_the_fix(user_module, tmp_path):
    with pytest.raises(ValueError, match="factory='package.module:make_model'"):
        pv.save(user_module.make_net(), tmp_path / "n.pt")


def test_a_spec_with_an_unregistered_part_says_to_import_it(user_module, tmp_path, monkeypatch):
    model = pv.build("vae", data_dim=64, latent_dim=2, prior={"kind": "user_laplace", "scale": 0.5})
    path = tmp_path / "m.pt"
    pv.save(model, path)
    monkeypatch.delitem(registry._REGISTRY["prior"], "user_laplace")
    with pytest.raises(ValueError, match="prior.kind='user_laplace', a part that is not registered"):
        pv.load(path)
    assert main(["sample", str(path), "--n", "4", "--out", str(tmp_path / "s.png")]) == 2
    monkeypatch.undo()
    pv.load(path)  # registered again: loads


def test_cli_import_registers_parts_first(user_module, tmp_path, capsys, monkeypatch):
    model = pv.build("vae", data_dim=64, latent_dim=2, prior={"kind": "user_laplace"})
    path = tmp_path / "m.pt"
    pv.save(model, path)
    monkeypatch.delitem(registry._REGISTRY["prior"], "user_laplace")
    import sys

    monkeypatch.delitem(sys.modules, "user_parts_mod")  # --import runs the registration again
    out = tmp_path / "s.png"
    assert main(["sample", str(path), "--n", "4", "--out", str(out), "--import", "user_parts_mod"]) == 0
    assert out.exists()
    assert main(["sample", str(path), "--import", "no_such_module_xyz"]) == 2
    assert "--import no_such_module_xyz" in capsys.readouterr().err
