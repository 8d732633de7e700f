"""The ``deca`` backend's parts: DECA's encoders in torch against an independent functional forward of the file
format, the loaders of the user's DECA and FLAME files (written here in those formats with random values,
never the licensed files), and DECA's crop from the tracked mesh."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nice_core.errors import InputError
from nice_core.prior3d.deca import (
    CODE_SIZES,
    DecaEncoders,
    crop_boxes,
    cut_crops,
    load_deca_encoders,
    read_flame_arrays,
    read_flame_model,
)

from conftest import write_deca_model


def reference_encoder(state: dict, x: torch.Tensor) -> torch.Tensor:
    """DECA's ``ResnetEncoder`` written out from its state dict's names: torchvision's ResNet-50 layout
    (stride on the 3x3 conv, 1x1 projection shortcut on each stage's first block), a 7x7 average pool and
    the 2048-1024-k head."""

    def bn(t: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(t, state[p + ".running_mean"], state[p + ".running_var"], state[p + ".weight"],
                            state[p + ".bias"], False, 0.0, 1e-5)

    x = F.relu(bn(F.conv2d(x, state["encoder.conv1.weight"], stride=2, padding=3), "encoder.bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for layer, blocks in zip(range(1, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            p = f"encoder.layer{layer}.{b}"
            stride = 2 if b == 0 and layer > 1 else 1
            out = F.relu(bn(F.conv2d(x, state[p + ".conv1.weight"]), p + ".bn1"))
            out = F.relu(bn(F.conv2d(out, state[p + ".conv2.weight"], stride=stride, padding=1), p + ".bn2"))
            out = bn(F.conv2d(out, state[p + ".conv3.weight"]), p + ".bn3")
            shortcut = bn(F.conv2d(x, state[p + ".downsample.0.weight"], stride=stride), p + ".downsample.1") \
                if b == 0 else x
            x = F.relu(out + shortcut)
    features = F.avg_pool2d(x, 7).flatten(1)
    hidden = F.relu(F.linear(features, state["layers.0.weight"], state["layers.0.bias"]))
    return F.linear(hidden, state["layers.2.weight"], state["layers.2.bias"])


def test_the_encoders_have_resnet50s_parameters_and_decas_heads() -> None:
    encoders = DecaEncoders()
    resnet = sum(p.numel() for p in encoders.E_flame.encoder.parameters())
    assert resnet == 23_508_032  # torchvision's resnet50 (25,557,032) without its 2048x1000 fc
    state = encoders.E_flame.state_dict()
    assert len(state) == 322 and state["layers.2.weight"].shape == (236, 1024)
    assert encoders.E_detail.state_dict()["layers.2.weight"].shape == (128, 1024)
    assert sum(CODE_SIZES.values()) == 236
    assert not any(p.requires_grad for p in encoders.parameters())
    encoders.train()
    assert not encoders.training  # batch norm keeps DECA's statistics in a fit


@pytest.fixture(scope="module")
def deca_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("deca") / "deca_model.tar"
    return path, write_deca_model(path, seed=3)


def test_a_deca_file_loads_and_matches_the_reference_forward(deca_file, tmp_path: Path) -> None:
    path, checkpoint = deca_file
    encoders = load_deca_encoders(path)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes = encoders(x)
        flame = reference_encoder(checkpoint["E_flame"], x)
        detail = reference_encoder(checkpoint["E_detail"], x)
    ours = torch.cat([codes[name] for name in CODE_SIZES], dim=1)
    assert ours.shape == (2, 236) and codes["light"].shape == (2, 27) and codes["detail"].shape == (2, 128)
    scale = flame.abs().max()
    assert scale > 1e-3 and (ours - flame).abs().max() < 1e-4 * scale
    assert (codes["detail"] - detail).abs().max() < 1e-4 * detail.abs().max()
    assert (codes["shape"][0] - codes["shape"][1]).abs().max() > 1e-4 * scale  # the input matters
    # torch's legacy (non-zip) format and DataParallel's "module." keys load to the same network
    legacy = tmp_path / "legacy.tar"
    write_deca_model(legacy, seed=3, legacy=True, prefix="module.")
    with torch.no_grad():
        again = load_deca_encoders(legacy)(x)
    assert torch.equal(again["shape"], codes["shape"])


def test_gradients_reach_the_image_through_the_crop(deca_file) -> None:
    encoders = load_deca_encoders(deca_file[0])
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1), requires_grad=True)
    codes = encoders(cut_crops(image, torch.tensor([[64.0, 70.0, 100.0]])))
    codes["detail"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in encoders.parameters())


def test_bad_deca_files_get_one_line_naming_them(deca_file, tmp_path: Path) -> None:
    path, checkpoint = deca_file
    with pytest.raises(InputError, match=r"DECA model not found: .*nothing\.tar \(prior3d\.deca_model"):
        load_deca_encoders(tmp_path / "nothing.tar")
    (tmp_path / "text.tar").write_text("<html>not a model</html>")  # a download that returned a web page
    with pytest.raises(InputError, match="cannot read DECA model .*text.tar"):
        load_deca_encoders(tmp_path / "text.tar")
    torch.save({"E_flame": checkpoint["E_flame"]}, tmp_path / "half.tar")
    with pytest.raises(InputError, match="has no E_detail state dict"):
        load_deca_encoders(tmp_path / "half.tar")
    wrong = dict(checkpoint, E_detail=dict(checkpoint["E_detail"]))
    wrong["E_detail"]["layers.2.weight"] = torch.zeros(100, 1024)
    torch.save(wrong, tmp_path / "wrong.tar")
    shape = r"E_detail\.layers\.2\.weight has shape \(100, 1024\), expected \(128, 1024\)"
    with pytest.raises(InputError, match=shape):
        load_deca_encoders(tmp_path / "wrong.tar")


class _Payload:
    """Pickles as a call of os.system: what a malicious model file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_no_code_in_a_deca_file_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"E_flame": {"x": _Payload(marker)}, "E_detail": {}}, tmp_path / "evil.tar")
    with pytest.raises(InputError, match="cannot read DECA model"):
        load_deca_encoders(tmp_path / "evil.tar")
    assert not marker.exists()


# -- FLAME ------------------------------------------------------------------------------------------------
def _fake_chumpy() -> type:
    """A class pickled as ``chumpy.ch.Ch`` whose state holds its value under ``x``, as chumpy's does."""
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x) -> None:
            self.x = np.asarray(x)
            self.dterms = ["x"]
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    return module


def write_flame_like(path: Path, vertices: int = 30, protocol: int = 2) -> dict:
    """A FLAME-like ``generic_model.pkl``: chumpy arrays, a sparse joint regressor, plain arrays and strings."""
    import scipy.sparse

    rng = np.random.default_rng(0)
    module = _fake_chumpy()
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
    try:
        regressor = scipy.sparse.random(5, vertices, density=0.2, format="csc", random_state=1)
        arrays = {"v_template": rng.normal(size=(vertices, 3)) * 0.1, "shapedirs": rng.normal(size=(vertices, 3, 400)),
                  "f": rng.integers(0, vertices, size=(40, 3)).astype(np.uint32), "J_regressor": regressor}
        data = {"v_template": arrays["v_template"], "shapedirs": module.Ch(arrays["shapedirs"]), "f": arrays["f"],
                "posedirs": module.Ch(rng.normal(size=(vertices, 3, 36))), "J_regressor": regressor,
                "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
                "weights": module.Ch(rng.random(size=(vertices, 5))), "bs_style": "lbs", "bs_type": "lrotmin"}
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    return arrays


@pytest.mark.parametrize("protocol", [0, 2])
def test_a_flame_pickle_loads_without_chumpy(tmp_path: Path, protocol: int) -> None:
    arrays = write_flame_like(tmp_path / "generic_model.pkl", protocol=protocol)
    assert "chumpy" not in sys.modules
    loaded = read_flame_arrays(tmp_path / "generic_model.pkl")
    assert np.array_equal(loaded["shapedirs"], arrays["shapedirs"]) and loaded["bs_style"] == "lbs"
    assert np.allclose(loaded["J_regressor"], arrays["J_regressor"].toarray())
    flame = read_flame_model(tmp_path / "generic_model.pkl")
    shape = torch.zeros(2, 100, dtype=torch.float64)
    shape[1, 3] = 2.0
    meshes = flame.neutral_vertices(shape)
    assert torch.allclose(meshes[0], torch.from_numpy(arrays["v_template"]).float().double(), atol=1e-6)
    expected = arrays["v_template"] + 2.0 * arrays["shapedirs"][:, :, 3]
    assert np.allclose(meshes[1].numpy(), expected, atol=1e-5)


def test_a_flame_pickle_with_foreign_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": _Payload(marker)}, protocol=2))
    with pytest.raises(InputError, match=r"cannot read FLAME model .*refused global (posix|os)\.system"):
        read_flame_model(tmp_path / "evil.pkl")
    assert not marker.exists()
    with pytest.raises(InputError, match="FLAME model not found: .*none.pkl"):
        read_flame_model(tmp_path / "none.pkl")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps({"f": np.zeros((2, 3))}, protocol=2))
    with pytest.raises(InputError, match="no 'v_template' array"):
        read_flame_model(tmp_path / "list.pkl")


# -- DECA's crop --------------------------------------------------------------------------------------------
def test_decas_crop_box_is_the_68_point_boxs_and_cut_crops_samples_it() -> None:
    from nice_core.prior3d.topology import canonical_mesh

    v = canonical_mesh().vertices.astype(np.float32)
    vertices = torch.from_numpy(np.stack([100 + 4 * v[:, 0], 120 - 4 * v[:, 1], v[:, 2]], axis=1))[None]
    cx, cy, side = crop_boxes(vertices)[0].tolist()
    top, left = cy - side / 2, cx - side / 2
    # a frontal face as DECA crops it: centred, the forehead's top at the upper edge, the chin near the bottom
    assert abs(cx - 100) < 0.5
    assert -0.05 < (float(vertices[0, 10, 1]) - top) / side < 0.1
    assert 0.75 < (float(vertices[0, 152, 1]) - top) / side < 0.92
    cheeks = [(float(vertices[0, i, 0]) - left) / side for i in (234, 454)]
    assert 0.08 < cheeks[0] < 0.2 and abs(cheeks[0] + cheeks[1] - 1) < 0.02
    # the crop maps the box's corners to the crop's corners
    ramp = torch.arange(256, dtype=torch.float32)
    image = torch.stack([ramp.expand(256, 256), ramp[:, None].expand(256, 256), torch.zeros(256, 256)])[None]
    crop = cut_crops(image, torch.tensor([[128.0, 100.0, 112.0]]))
    assert crop.shape == (1, 3, 224, 224)
    assert abs(float(crop[0, 0, 0, 0]) - (128 - 56 + 0.25 - 0.5)) < 0.3
    assert abs(float(crop[0, 1, -1, 0]) - (100 + 56 - 0.25 - 0.5)) < 0.3
