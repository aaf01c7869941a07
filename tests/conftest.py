import signal

import pyro
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _clean_pyro():
    pyro.clear_param_store()
    pyro.enable_validation(True)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def digits():
    """The bundled 8×8 digits, binarized (tests may override with their own ``digits``)."""
    import ppl_vae as pv

    return pv.data.load("digits", binarize=True)


@pytest.fixture(scope="session")
def linear():
    """A small linear-Gaussian data set: 4-dim data, 1 latent, 200 points."""
    import ppl_vae as pv

    return pv.data.load("linear_gaussian", data_dim=4, latent_dim=1, n=200)


@pytest.fixture
def no_hang():
    """Fail (instead of hanging) when a call blocks or loops: a TimeoutError after 60 s."""
    def timeout(*_):
        raise TimeoutError("the call did not return within 60 s")
    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
