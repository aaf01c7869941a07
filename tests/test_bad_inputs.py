"""The bad-input matrix: every public entry point answers bad input with a ValueError
that names the argument (or file) — and leaves the disk as it was.

Each case prepares its files in ``tmp_path``, then the folder is snapshotted (names,
sizes, mtimes, hashes), the call is made, and the snapshot is taken again.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import ppl_vae as pv
from ppl_vae.data.files import IDX_FILES

TINY = {"latent_dim": 2, "decoder": {"hidden": [8]}, "guide": {"hidden": [8]}}
MODEL = pv.build("vae", **TINY)
X = torch.bernoulli(torch.full((12, 64), 0.5), generator=torch.Generator().manual_seed(0))
LATENTS = np.random.default_rng(0).normal(size=(40, 3))
FACTORS = np.random.default_rng(1).integers(0, 3, size=(40, 2))


def snapshot(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = (hashlib.sha256(path.read_bytes()).hexdigest()
                  if path.is_file() and not path.is_symlink() else None)
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


# -- helpers that write small hostile files ---------------------------------------------

def _checkpoint(tmp: Path, name="m.pt", edit=None) -> Path:
    obj = copy.deepcopy(pv.checkpoint.payload(MODEL))
    if edit is not None:
        edit(obj)
    path = tmp / name
    torch.save(obj, path)
    return path


def _npz_with_header(tmp: Path, shape, dtype="<f8") -> Path:
    """An .npz whose array 'x' claims ``shape`` but holds 16 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    path = tmp / "lying.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue() + b"\0" * 16)
    return path


def _idx_folder(tmp: Path, images: bytes, *, gz=False) -> Path:
    """A folder of the four IDX files with ``images`` as the training images."""
    root = tmp / "idx"
    root.mkdir()
    good_images = b"\0\0\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(8)
    labels = b"\0\0\x08\x01" + struct.pack(">I", 2) + bytes(2)
    files = {"train_images": images, "train_labels": labels,
             "test_images": good_images, "test_labels": labels}
    for key, data in files.items():
        name = IDX_FILES[key]
        if gz and key == "train_images":
            (root / (name + ".gz")).write_bytes(data)
        else:
            (root / name).write_bytes(data)
    return root


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def _malicious_pickle(tmp: Path) -> Path:
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    path = tmp / "evil.pt"
    path.write_bytes(pickle.dumps({"format": "x", "payload": Evil()}))
    return path


def _fifo(tmp: Path) -> Path:
    path = tmp / "fifo"
    os.mkfifo(path)
    return path


def _symlink(tmp: Path) -> Path:
    target = _checkpoint(tmp, "real.pt")
    link = tmp / "link.pt"
    link.symlink_to(target)
    return link


def _under_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("x")
    return tmp / "afile" / "m.pt"


def _toml(tmp: Path, data: bytes) -> Path:
    path = tmp / "spec.toml"
    path.write_bytes(data)
    return path


def _rdvae():
    return pv.build("rdvae", num_classes=3, **TINY)


# -- the matrix: (id, call taking tmp_path, words the message must contain) -----------

C = []


def case(name, words, call, setup=None):
    """``call(tmp)``, or ``call(tmp, setup(tmp))`` when the case first writes a file."""
    C.append(pytest.param(call, setup, words, id=name))


# data arrays (any function taking x: pv.infer.*, pv.fit, metrics)
case("x-strings", ["x", "dtype"], lambda t: pv.infer.elbo(MODEL, [["a"] * 64] * 3))
case("x-objects", ["x", "dtype"], lambda t: pv.infer.elbo(MODEL, np.array([[object()] * 64] * 2)))
case("x-ragged", ["x", "rectangular"], lambda t: pv.infer.elbo(MODEL, [[0.0] * 64, [0.0] * 3]))
case("x-complex", ["x", "complex"], lambda t: pv.infer.elbo(MODEL, np.ones((3, 64), complex)))
case("x-complex-tensor", ["x", "complex"],
     lambda t: pv.infer.log_likelihood(MODEL, torch.ones(3, 64, dtype=torch.complex64)))
case("x-nan", ["x", "NaN"], lambda t: pv.infer.elbo(MODEL, X.masked_fill(X > 0, float("nan"))))
case("x-inf", ["x", "inf"], lambda t: pv.infer.elbo(MODEL, X.masked_fill(X > 0, float("inf"))))
case("x-3d", ["x", "shape"], lambda t: pv.infer.elbo(MODEL, X.reshape(12, 8, 8)))
case("x-empty", ["x", "empty"], lambda t: pv.infer.elbo(MODEL, X[:0]))
case("x-wrong-dim", ["data_dim=63"], lambda t: pv.infer.elbo(MODEL, X[:, :63]))
case("x-none", ["x=None"], lambda t: pv.infer.elbo(MODEL, None))
case("fit-x-complex", ["x", "complex"],
     lambda t: pv.fit(MODEL, np.ones((3, 64), complex), steps=1, progress=False))
case("fit-name-only", ["model='digits' is text", "pv.build"], lambda t: pv.fit("digits"))
case("fit-no-data", ["x is missing", "pv.fit(model, x)"], lambda t: pv.fit(MODEL))
# seeds
case("seed-fraction", ["seed=1.5"], lambda t: pv.infer.elbo(MODEL, X, seed=1.5))
case("seed-negative", ["seed=-3"], lambda t: pv.infer.log_likelihood(MODEL, X, seed=-3))
case("seed-text", ["seed='abc'"], lambda t: pv.infer.project(MODEL, X, seed="abc"))
case("seed-2**63", ["seed=9223372036854775808"],
     lambda t: pv.infer.sample_aggregate_posterior(MODEL, X, 4, seed=2**63))
case("seed-sample", ["seed=-1"], lambda t: MODEL.sample(4, seed=-1))
case("seed-fit", ["seed=1.5"], lambda t: pv.fit(MODEL, X, steps=1, seed=1.5, progress=False))
case("seed-local-guide", ["seed=-2"],
     lambda t: pv.infer.fit_local_guide(MODEL, X, steps=1, seed=-2))
case("seed-decomposition", ["seed=0.5"],
     lambda t: pv.metrics.elbo_decomposition(MODEL, X, seed=0.5))
# numeric options of pv.infer.* and pv.fit
case("num_particles-0", ["num_particles=0"], lambda t: pv.infer.elbo(MODEL, X, num_particles=0))
case("num_particles-float", ["num_particles=2.5"],
     lambda t: pv.infer.elbo(MODEL, X, num_particles=2.5))
case("num_samples-0", ["num_samples=0"], lambda t: pv.infer.log_likelihood(MODEL, X, num_samples=0))
case("num_samples-text", ["num_samples='10'"],
     lambda t: pv.infer.log_likelihood(MODEL, X, num_samples="10"))
case("chunk_size-0", ["chunk_size=0"], lambda t: pv.infer.log_likelihood(MODEL, X, chunk_size=0))
case("proposal", ["proposal='bogus'"], lambda t: pv.infer.log_likelihood(MODEL, X, proposal="bogus"))
case("project-method", ["method='bogus'"], lambda t: pv.infer.project(MODEL, X, method="bogus"))
case("project-steps", ["steps=0"], lambda t: pv.infer.project(MODEL, X, method="map", steps=0))
case("aggregate-n", ["n=0"], lambda t: pv.infer.sample_aggregate_posterior(MODEL, X, 0, seed=0))
case("sample-n", ["n=-1"], lambda t: MODEL.sample(-1))
case("traverse-dim", ["dim=9"], lambda t: pv.infer.traverse(MODEL, torch.zeros(2), 9, [0.0]))
case("fit-steps", ["steps=0"], lambda t: pv.fit(MODEL, X, steps=0, progress=False))
case("fit-batch", ["batch_size=0"], lambda t: pv.fit(MODEL, X, steps=1, batch_size=0, progress=False))
case("fit-lr-nan", ["lr=nan"], lambda t: pv.fit(MODEL, X, steps=1, lr=float("nan"), progress=False))
case("fit-lr-negative", ["lr=-1"], lambda t: pv.fit(MODEL, X, steps=1, lr=-1, progress=False))
# labels
case("y-fraction", ["y", "integer"], lambda t: _rdvae().check_data(X, np.full(12, 1.5)))
case("y-length", ["y", "shape"], lambda t: _rdvae().check_data(X, np.zeros(5, int)))
case("y-range", ["y", "label 7"], lambda t: _rdvae().check_data(X, np.full(12, 7)))
case("y-nan", ["y", "NaN"], lambda t: _rdvae().check_data(X, np.full(12, np.nan)))
case("y-text", ["y", "dtype"], lambda t: _rdvae().check_data(X, np.array(["a"] * 12)))
# metrics
case("mig-bins-0", ["bins=0"], lambda t: pv.metrics.mig(LATENTS, FACTORS, bins=0))
case("mig-bins-float", ["bins=2.5"], lambda t: pv.metrics.mig(LATENTS, FACTORS, bins=2.5))
case("mig-ragged", ["latents", "rectangular"], lambda t: pv.metrics.mig([[1.0, 2.0], [1.0]], FACTORS))
case("mig-nan", ["latents", "NaN"],
     lambda t: pv.metrics.mig(np.where(LATENTS > 1, np.nan, LATENTS), FACTORS))
case("mig-rows", ["factors", "40"], lambda t: pv.metrics.mig(LATENTS, FACTORS[:10]))
case("dci-text", ["latents", "dtype"], lambda t: pv.metrics.dci(LATENTS.astype(str), FACTORS))
case("dci-test-fraction", ["test_fraction=1.5"],
     lambda t: pv.metrics.dci(LATENTS, FACTORS, test_fraction=1.5))
case("dci-seed", ["seed=-1"], lambda t: pv.metrics.dci(LATENTS, FACTORS, seed=-1))
case("auroc-nan", ["scores_in", "NaN"], lambda t: pv.metrics.ood_auroc([0.1, np.nan], [0.3]))
case("auroc-empty", ["scores_out", "empty"], lambda t: pv.metrics.ood_auroc([0.1, 0.2], []))
case("auroc-complex", ["scores_in", "complex"], lambda t: pv.metrics.ood_auroc([1j, 2j], [0.3]))
case("decomposition-x", ["x", "NaN"],
     lambda t: pv.metrics.elbo_decomposition(MODEL, X.masked_fill(X > 0, float("nan"))))
# specs (pv.build)
case("latent_dim-huge", ["latent_dim=1000000000000", "memory budget"],
     lambda t: pv.build("vae", latent_dim=10**12))
case("hidden-huge", ["decoder.hidden", "memory budget"],
     lambda t: pv.build("vae", decoder={"hidden": [10**7, 10**7]}))
case("renyi-kl_warmup", ["bound='renyi'", "kl_warmup=2", "Rényi bound", "bound='elbo'"],
     lambda t: pv.fit(pv.build("vae", data_dim=4, **TINY), torch.rand(8, 4).round(), steps=2,
                      bound="renyi", kl_warmup=2, progress=False))
case("decoder-deep", ["decoder.hidden", "1000001 layers", "fewer layers"],
     lambda t: pv.build("vae", decoder={"hidden": [1] * 10**6}))
case("flow-hidden-huge", ["guide.flow.hidden=[100000, 100000]", "memory budget"],
     lambda t: pv.build("vae", guide={"flow": {"kind": "iaf", "hidden": [10**5] * 2}}))
case("flow-layers-huge", ["guide.flow.layers", "10000000 layers", "fewer layers"],
     lambda t: pv.build("vae", guide={"flow": {"kind": "iaf", "layers": 10**7}}))
case("num_components-huge", ["num_components", "memory budget"],
     lambda t: pv.build("gmm", num_components=10**12))
case("data_dim-0", ["data_dim=0"], lambda t: pv.build("vae", data_dim=0))
case("latent_dim-float", ["latent_dim=2.5"], lambda t: pv.build("vae", latent_dim=2.5))
case("scale-inf", ["likelihood.scale=inf"],
     lambda t: pv.build("lvm", likelihood={"kind": "normal", "scale": float("inf")}))
case("kl-nan", ["objective.kl=nan"], lambda t: pv.build("vae", objective={"kl": float("nan")}))
case("tc-text", ["objective.tc='abc'"], lambda t: pv.build("vae", objective={"tc": "abc"}))
case("penalty-weight-text", ["weight", "abc"],
     lambda t: pv.build("rdvae", penalty=[{"kind": "repulsion", "weight": "abc"}]))
case("penalty-weight-nan", ["penalty.weight=nan"],
     lambda t: pv.build("rdvae", penalty=[{"kind": "repulsion", "weight": float("nan")}]))
case("beta-inf", ["beta=inf"], lambda t: pv.build("vae", beta=float("inf")))
case("spec-unknown-key", ["'bogus'", "valid keys"], lambda t: pv.build("vae", bogus=1))
case("spec-family", ["family='nope'"], lambda t: pv.build({"family": "nope"}))
case("spec-seed", ["seed=-1"], lambda t: pv.build("vae", seed=-1))
case("spec-type", ["spec", "int"], lambda t: pv.build(3))
case("toml-not-utf8", ["spec.toml", "UTF-8"], lambda t, p: pv.build(p),
     lambda t: _toml(t, b'family = "vae"\nname = "\xff\xfe"\n'))
case("toml-syntax", ["spec.toml", "TOML"], lambda t, p: pv.build(p),
     lambda t: _toml(t, b"family = = 1"))
case("toml-folder", ["no such file"], lambda t: pv.build(str(t / "dir.toml")))
# data files (pv.data.load): setup writes the file, the call reads it
def _write(name, data):
    def setup(t):
        (t / name).write_bytes(data)
        return t / name
    return setup


def _savez(name, **arrays):
    def setup(t):
        np.savez(t / name, **arrays)
        return t / name
    return setup


def _truncated_npz(t):
    np.savez(t / "x.npz", x=np.ones((50, 4)))
    (t / "x.npz").write_bytes((t / "x.npz").read_bytes()[:300])
    return t / "x.npz"


def _truncated_checkpoint(t):
    path = _checkpoint(t)
    path.write_bytes(path.read_bytes()[:500])
    return path


def _idx(images, *, gz=False):
    return lambda t: _idx_folder(t, images, gz=gz)


def _tampered(edit):
    return lambda t: _checkpoint(t, edit=edit)


IMAGES_2x2x2 = b"\0\0\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(8)
load = lambda t, path: pv.data.load(path)
case("npz-missing", ["nothing.npz", "does not exist"], lambda t: pv.data.load(t / "nothing.npz"))
case("npz-text", ["bad.npz", ".npz"], load, _write("bad.npz", b"hello"))
case("npz-truncated", ["x.npz"], load, _truncated_npz)
case("npz-header-1e13", ["lying.npz", "'x'"], load, lambda t: _npz_with_header(t, (10**13,)))
case("npz-header-lies-small", ["lying.npz", "corrupt"], load, lambda t: _npz_with_header(t, (1,)))
case("npz-object", ["o.npz", "objects"], load,
     _savez("o.npz", x=np.array([[{}], [{}]], dtype=object)))
case("npz-strings", ["s.npz", "'x'", "dtype"], load, _savez("s.npz", x=np.array([["a", "b"]] * 4)))
case("npz-complex", ["c.npz", "'x'", "complex"], load, _savez("c.npz", x=np.ones((4, 2), complex)))
case("npz-labels-text", ["y.npz", "'y'", "dtype"], load,
     _savez("y.npz", x=np.ones((4, 2)), y=np.array(list("abcd"))))
case("npz-budget", ["'x'", "memory budget"], lambda t, p: pv.data.load(p, memory_budget=1000),
     _savez("b.npz", x=np.ones((64, 64))))
case("npz-budget-text", ["memory_budget='lots'"],
     lambda t, p: pv.data.load(p, memory_budget="lots"), _savez("b.npz", x=np.ones((4, 4))))
case("npz-test_fraction", ["test_fraction=1.5"],
     lambda t, p: pv.data.load(p, test_fraction=1.5), _savez("f.npz", x=np.ones((4, 4))))
case("load-unknown-option", ["'bogus'", "valid options"],
     lambda t: pv.data.load("digits", bogus=1))
case("load-not-a-path", ["name_or_path=3"], lambda t: pv.data.load(3))
case("sprites-n-huge", ["1000000000000 images", "memory budget"], lambda t: pv.data.load("sprites", n=10**12))
case("sprites-size-huge", ["size=1000000", "memory budget"],
     lambda t: pv.data.load("sprites", size=10**6, n=2))
case("gmm-n-huge", ["n=1000000000000", "memory budget"],
     lambda t: pv.data.load("gmm_synthetic", n=10**12))
case("linear-data_dim-huge", ["data_dim=1000000000", "memory budget"],
     lambda t: pv.data.load("linear_gaussian", data_dim=10**9))
case("digits-test_fraction", ["test_fraction=0"], lambda t: pv.data.load("digits", test_fraction=0))
case("idx-lying-ndim", ["train-images", "truncated"], load, _idx(b"\0\0\x08\x03\0\0\0\x02"))
case("idx-truncated", ["train-images", "truncated"], load,
     _idx(b"\0\0\x08\x03" + struct.pack(">3I", 9, 2, 2) + bytes(8)))
case("idx-magic", ["train-images", "magic"], load, _idx(b"GIF89a.."))
case("idx-garbage-gz", ["train-images", "cannot be read"], load,
     _idx(b"\x1f\x8bnot really gzip", gz=True))
case("idx-gzip-bomb", ["train-images", "more data than its header"], load,
     _idx(_gzip(IMAGES_2x2x2 + bytes(8 * 2**20)), gz=True))
case("idx-gzip-claims-too-much", ["train-images", "gzip file can hold"], load,
     _idx(_gzip(b"\0\0\x08\x03" + struct.pack(">3I", 60000, 4000, 4000)), gz=True))
case("idx-nan", ["train-images", "NaN"], load,
     _idx(b"\0\0\x0d\x03" + struct.pack(">3I", 2, 1, 1) + struct.pack(">2f", 0.5, float("nan"))))
case("idx-budget", ["train-images", "memory budget"],
     lambda t, p: pv.data.load(p, memory_budget=4), _idx(IMAGES_2x2x2))
case("idx-n_train", ["n_train=0"], lambda t, p: pv.data.load(p, n_train=0), _idx(IMAGES_2x2x2))
# checkpoints (pv.load / pv.save)
ckpt = lambda t, path: pv.load(path)
save = lambda t, path: pv.save(MODEL, path)
case("load-text", ["t.txt", "not a ppl_vae checkpoint"], ckpt, _write("t.txt", b"hello\n" * 9))
case("load-empty", ["e.pt", "not a ppl_vae checkpoint"], ckpt, _write("e.pt", b""))
case("load-truncated", ["m.pt", "not a ppl_vae checkpoint"], ckpt, _truncated_checkpoint)
case("load-malicious-pickle", ["evil.pt", "not a ppl_vae checkpoint"], ckpt, _malicious_pickle)
case("load-no-spec", ["m.pt", "spec"], ckpt, _tampered(lambda o: o.pop("spec")))
case("load-spec-is-path", ["m.pt", "spec is str"], ckpt,
     _tampered(lambda o: o.update(spec="/etc/hostname")))
case("load-spec-huge-hidden", ["m.pt", "do not match its spec"], ckpt,
     _tampered(lambda o: o["spec"]["decoder"].update(hidden=[12000, 12000])))
case("load-spec-bad-key", ["m.pt", "'bogus'"], ckpt, _tampered(lambda o: o["spec"].update(bogus=1)))
case("load-spec-latent", ["m.pt", "do not match"], ckpt,
     _tampered(lambda o: o["spec"].update(latent_dim=3)))
case("load-extra-weight", ["m.pt", "zzz"], ckpt,
     _tampered(lambda o: o["state_dict"].update(zzz=torch.zeros(2))))
case("load-no-weights", ["m.pt", "state_dict"], ckpt, _tampered(lambda o: o.pop("state_dict")))
case("load-folder", ["no such checkpoint"], lambda t: pv.load(t))
case("load-path-type", ["path=3"], lambda t: pv.load(3))
case("save-folder", ["is a folder"], lambda t: pv.save(MODEL, t))
case("save-under-file", ["afile", "not a folder"], save, _under_file)
case("save-symlink", ["link.pt", "symbolic link"], save, _symlink)
case("save-fifo", ["fifo", "not a regular file"], save, _fifo)
case("save-not-a-model", ["model", "not a ppl_vae model"], lambda t: pv.save(object(), t / "m.pt"))
# study runs
_toy = pv.study.Study(name="toy", question="Q", trial=lambda c, s: {"x": 1.0}, grid=[{"a": 1}])
case("study-seeds-0", ["seeds=0"], lambda t: pv.study.run(_toy, seeds=0, out=t))
case("study-seeds-float", ["seeds=[1.5]"], lambda t: pv.study.run(_toy, seeds=[1.5], out=t))
case("study-seeds-huge", ["seeds=[9223372036854775808]"],
     lambda t: pv.study.run(_toy, seeds=[2**63], out=t))
case("study-workers", ["workers=0"], lambda t: pv.study.run(_toy, seeds=1, workers=0, out=t))
case("study-executor", ["executor='bogus'"], lambda t: pv.study.run(_toy, executor="bogus", out=t))
case("study-address", ["address="], lambda t: pv.study.run(_toy, address="h:1", out=t))
case("study-name", ["study='nope'"], lambda t: pv.study.run("nope", out=t))
case("study-retry-text", ["retry_failed='no'", "True or False"],
     lambda t: pv.study.run(_toy, retry_failed="no", out=t))
case("study-progress-int", ["progress=1", "True or False"],
     lambda t: pv.study.run(_toy, progress=1, out=t))
case("study-small-text", ["small='yes'", "True or False"],
     lambda t: pv.study.run(_toy, small="yes", out=t))
case("study-seeds-1e12", ["seeds=1000000000000", "memory budget", "fewer seeds"],
     lambda t: pv.study.run(_toy, seeds=10**12, out=t))
case("study-seeds-2d-array", ["seeds="], lambda t: pv.study.run(_toy, seeds=np.ones((2, 2), int), out=t))

# round 3: data that is not an array, specs with text weights
fit1 = lambda x, **kw: pv.fit(MODEL, x, steps=1, progress=False, **kw)
case("fit-x-name", ["x='digits'", "pv.data.load"], lambda t: fit1("digits"))
case("fit-x-bytes", ["x=b'ab'", "text"], lambda t: fit1(b"ab"))
case("fit-x-dict", ["x", "dtype object"], lambda t: fit1({"x": X}))
case("fit-x-meta", ["x", "'meta' device", "holds values"],
     lambda t: fit1(torch.zeros(12, 64, device="meta")))
case("fit-x_val-meta", ["x_val", "'meta' device"],
     lambda t: fit1(X, x_val=torch.zeros(4, 64, device="meta")))
case("elbo-x-meta", ["x", "'meta' device"],
     lambda t: pv.infer.elbo(MODEL, torch.zeros(3, 64, device="meta")))
case("y-meta", ["y", "'meta' device"],
     lambda t: _rdvae().check_data(X, torch.zeros(12, dtype=torch.long, device="meta")))


class _ScalarRows:
    """len() and [i] for one integer at a time, as a list-like source would."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return [0.0] * 64 if isinstance(i, int) else {}[i.tolist()]


case("fit-source-unindexable", ["x=_ScalarRows", "x[indices]"], lambda t: fit1(_ScalarRows()))
# sizes beyond the memory budget, data that overflow float32
NORMAL = pv.build("vae", likelihood={"kind": "normal"}, **TINY)
case("log_likelihood-1e9", ["num_samples=1000000000", "memory budget", "smaller num_samples"],
     lambda t: pv.infer.log_likelihood(MODEL, X, num_samples=10**9))
case("aggregate-1e11", ["n=100000000000 rows of 64 values", "memory budget", "smaller n"],
     lambda t: pv.infer.sample_aggregate_posterior(MODEL, X, 10**11))
case("log_likelihood-x-1e19", ["x", "not finite", "row(s) (3;", "1e+19", "float64"],
     lambda t: pv.infer.log_likelihood(NORMAL, X.index_fill(0, torch.tensor([3]), 1e19),
                                       num_samples=4, seed=0))
case("log_likelihood-x-1e30", ["x", "not finite", "rescale"],
     lambda t: pv.infer.log_likelihood(NORMAL, X.index_fill(0, torch.tensor([0]), 1e30),
                                       num_samples=4, seed=0))
if not torch.backends.mps.is_available():
    case("device-mps", ["device='mps'", "no MPS", "device='cpu'"],
         lambda t: pv.infer.elbo(MODEL, X, device="mps"))
    case("fit-device-mps", ["device='mps'", "no MPS"], lambda t: fit1(X, device="mps"))
case("penalty-kl-weight-text", ["penalty[0].weight='abc'", "finite number"],
     lambda t: pv.build("vae", penalty=[{"kind": "kl", "weight": "abc"}]))
case("kl-text", ["objective.kl='abc'", "finite number"],
     lambda t: pv.build({"family": "vae", "objective": {"kl": "abc"}}))


@pytest.mark.parametrize("call, setup, words", C)
def test_bad_input_is_a_value_error_that_names_it(tmp_path, call, setup, words, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a case that wrongly wrote a relative file would show here
    (tmp_path / "dir.toml").mkdir()
    args = () if setup is None else (setup(tmp_path),)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        call(tmp_path, *args)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "pwned").exists()


def test_matrix_size():
    assert len(C) >= 60


def test_tampered_checkpoint_is_refused_before_any_module_is_built(tmp_path, monkeypatch):
    """hidden = [12000, 12000] in a small file: the shapes are compared on the meta
    device, so the real (553 MiB) model is never built."""
    import sys

    build_module = sys.modules["ppl_vae.models.build"]  # the attribute 'build' is the function
    path = _checkpoint(tmp_path, edit=lambda o: o["spec"]["decoder"].update(hidden=[12000, 12000]))
    real_builds = []
    original = build_module.build
    monkeypatch.setattr(build_module, "build",
                        lambda *a, **k: real_builds.append(a) or original(*a, **k))
    with pytest.raises(ValueError, match="do not match its spec"):
        pv.load(path)
    assert real_builds == [] and path.stat().st_size < 200_000


def test_a_good_checkpoint_still_loads(tmp_path):
    path = _checkpoint(tmp_path)
    again = pv.load(path)
    for key, value in MODEL.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_rows_within_budget_names_the_argument_and_the_fix(monkeypatch):
    monkeypatch.setenv("PPL_VAE_MEMORY_BUDGET", "1M")
    pv._checks.rows_within_budget("n", 1000, 40)  # 0.96 MB: within
    with pytest.raises(ValueError, match=r"n=10000 rows of 40 values would take 9\.2 MiB, more "
                                         r"than the memory budget of 1\.0 MiB: pass a smaller n"):
        pv._checks.rows_within_budget("n", 10_000, 40)


def test_sizes_past_the_budget_are_refused_before_allocating():
    model = pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]})
    with pytest.raises(ValueError, match="n="):
        model.sample(10**11)
    with pytest.raises(ValueError, match="n="):
        pv.build("gmm", data_dim=4, num_components=2).sample(10**11)
    x = np.zeros((10, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="num_particles"):
        pv.infer.elbo(model, x, num_particles=10**9)
    with pytest.raises(ValueError, match="val_iwae"):
        pv.fit(model, x, steps=1, x_val=x, val_iwae=10**9, progress=False)
    with pytest.raises(ValueError, match="y_val given without x_val"):
        pv.fit(model, x, steps=1, y_val=np.zeros(10, dtype=np.int64), progress=False)


@pytest.mark.parametrize("option, words", [
    ({"num_particles": 10**9}, "num_particles=1000000000 for batches of 10 row"),
    ({"bound": {"kind": "iwae", "num_samples": 10**9}}, "bound 'iwae' num_samples=1000000000"),
    ({"bound": {"kind": "renyi", "num_samples": 10**9, "alpha": 0.5}}, "pass a smaller num_samples"),
])
def test_training_particles_past_the_budget_are_refused_before_the_first_step(option, words):
    # Pyro's Trace_ELBO loops over its particles: 10**9 of them hung instead of failing
    model = pv.build("vae", latent_dim=2, decoder={"hidden": [8]}, guide={"hidden": [8]})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=re.escape(words)):
        pv.fit(model, np.zeros((10, 64), dtype=np.float32), steps=1, progress=False, **option)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
