"""The torch port of dlib's face-recognition ResNet against dlib itself, on real aligned chips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nice_core.errors import InputError
from nice_core.prior3d.dlib_resnet import DLIB_DISTANCE_THRESHOLD, default_weights_path, load_dlib_face_resnet

from conftest import SAMPLE

dlib = pytest.importorskip("dlib")
face_recognition_models = pytest.importorskip("face_recognition_models")

#: Frames of the bundled sample, spread over the clip (its one face, turning its head).
FRAMES = (0, 120, 240)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The port must be checked as it runs in a worker that owns one core; restore the caller's setting.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net():
    return load_dlib_face_resnet()


@pytest.fixture(scope="module")
def faces() -> list[tuple[str, np.ndarray, object]]:
    """``(name, chip (150, 150, 3) uint8 RGB, dlib's descriptor of the whole image)`` for three frames of the
    sample video and matplotlib's photo of Grace Hopper."""
    from matplotlib import cbook
    from PIL import Image

    images: list[tuple[str, np.ndarray]] = []
    with av.open(str(SAMPLE)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in FRAMES:
                images.append((f"sample frame {i}", frame.to_ndarray(format="rgb24")))
            if i >= max(FRAMES):
                break
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        images.append(("grace_hopper.jpg", np.asarray(Image.open(fh).convert("RGB"))))

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    reference = dlib.face_recognition_model_v1(str(default_weights_path()))
    out = []
    for name, image in images:
        boxes = detector(image, 0)
        assert len(boxes) == 1, f"{name}: dlib found {len(boxes)} faces"
        shape = predictor(image, boxes[0])
        chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        out.append((name, chip, np.array(reference.compute_face_descriptor(image, shape))))
    return out


def to_tensor(chips: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255.0


def test_descriptors_match_dlib_on_the_same_chips(net, faces):
    reference = dlib.face_recognition_model_v1(str(default_weights_path()))
    names = [name for name, _, _ in faces]
    chips = [chip for _, chip, _ in faces]
    of_chip = np.stack([np.array(reference.compute_face_descriptor(chip)) for chip in chips])
    # compute_face_descriptor(image, shape) cuts exactly get_face_chip(..., 150, 0.25): the port, fed that
    # chip, stands for dlib's whole pipeline.
    np.testing.assert_array_equal(of_chip, np.stack([d for _, _, d in faces]))

    with torch.no_grad():
        ours = net(to_tensor(chips)).double().numpy()
    assert ours.shape == (len(chips), 128)
    worst = np.abs(ours - of_chip).max(axis=1)
    assert worst.max() <= 1e-4, dict(zip(names, worst))

    # The descriptors mean what dlib's mean: the video's one person is closer to themselves (across head
    # turns) than to Grace Hopper, who is beyond dlib's same-person threshold from every frame.
    dist = np.linalg.norm(ours[:, None] - ours[None], axis=-1)
    video = len(FRAMES)
    assert dist[:video, :video].max() < dist[video, :video].min(), dist.round(3)
    assert dist[video, :video].min() > DLIB_DISTANCE_THRESHOLD, dist.round(3)


def test_identity_distance_is_differentiable_in_the_chip(net, faces):
    assert not any(p.requires_grad for p in net.parameters())
    # Keep the chips away from 0 and 1 so the finite differences below stay inside [0, 1].
    a, b = (to_tensor([faces[i][1]]) * 0.98 + 0.01 for i in (0, -1))
    a.requires_grad_(True)
    distance = (net(a) - net(b)).norm()
    distance.backward()
    grad = a.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().max() > 0
    assert all(p.grad is None for p in net.parameters())

    # The gradient is the derivative: compare it with a central difference along a random direction, in
    # float64 with a step small enough that no ReLU or max-pool switches (at 1e-3 the difference is 0.7% off).
    net64 = load_dlib_face_resnet().double()
    direction = torch.randn(a.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direction /= direction.norm()
    a64, b64, eps = a.detach().double(), b.double(), 1e-5
    with torch.no_grad():
        target = net64(b64)
        numeric = ((net64(a64 + eps * direction) - target).norm() - (net64(a64 - eps * direction) - target).norm())
    numeric = numeric.item() / (2 * eps)
    analytic = (grad.double() * direction).sum().item()
    assert analytic == pytest.approx(numeric, rel=1e-4)


@pytest.mark.parametrize("keep", [200, 11_000_000], ids=["in the layer list", "in the weights"])
def test_truncated_weight_file_names_the_file(tmp_path: Path, keep: int):
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    with open(default_weights_path(), "rb") as fh:
        bad.write_bytes(fh.read(keep))
    with pytest.raises(InputError) as err:
        load_dlib_face_resnet(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: truncated dlib weight file"), message
    assert f"the file has {keep} bytes" in message
    assert err.value.__cause__ is None and err.value.__context__ is None


def test_bad_chips_are_refused_with_the_bad_value(net):
    with pytest.raises(ValueError, match=r"shape \(B, 3, 150, 150\), got \(1, 3, 112, 112\)"):
        net(torch.zeros(1, 3, 112, 112))
    with pytest.raises(ValueError, match=r"\[0, 1\], got values in \[0, 255\]"):
        net(torch.full((1, 3, 150, 150), 255.0).index_fill_(1, torch.tensor([0]), 0.0))
    with pytest.raises(TypeError, match="torch.uint8"):
        net(torch.zeros(1, 3, 150, 150, dtype=torch.uint8))
