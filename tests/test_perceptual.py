"""Perceptual feature extractors: the mediapipe face-mesh port (checked against mediapipe's own TFLite
runtime) and the torchvision-free VGG-19 with torchvision-format state dicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nice_core.carrier.perceptual import (
    STAGES,
    VGG19Features,
    face_landmark_graph,
    load_default_perceptual,
    load_vgg19,
    mediapipe_model_path,
    read_tflite,
)
from nice_core.carrier.perceptual.tflite_torch import same_padding


def _image(seed: int, size: int = 192) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _mediapipe_landmarks(image: np.ndarray) -> np.ndarray:
    """The raw 1404 landmark outputs of face_landmark.tflite, run by mediapipe's own TFLite runtime."""
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import packet_creator, packet_getter
    from mediapipe.python._framework_bindings import calculator_graph, image_frame

    h, w = image.shape[:2]
    config = f"""
        input_stream: "image"
        output_stream: "floats"
        node {{
          calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:in"
          options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{
            output_tensor_width: {w} output_tensor_height: {h} keep_aspect_ratio: false
            output_tensor_float_range {{ min: 0.0 max: 1.0 }} }} }}
        }}
        node {{
          calculator: "InferenceCalculator" input_stream: "TENSORS:in" output_stream: "TENSORS:out"
          options {{ [mediapipe.InferenceCalculatorOptions.ext] {{
            model_path: "{mediapipe_model_path()}" delegate {{ tflite {{}} }} }} }}
        }}
        node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:out" output_stream: "FLOATS:floats" }}
    """
    graph = calculator_graph.CalculatorGraph(
        graph_config=text_format.Parse(config, calculator_pb2.CalculatorGraphConfig()))
    out: list[np.ndarray] = []
    graph.observe_output_stream("floats", lambda _s, p: out.append(np.array(packet_getter.get_float_list(p))))
    graph.start_run()
    frame = packet_creator.create_image_frame(image_format=image_frame.ImageFormat.SRGB, data=image)
    graph.add_packet_to_input_stream("image", frame.at(0))
    graph.close()
    assert len(out) == 1
    return out[0]


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


# --- the TFLite reader ---------------------------------------------------------------------------------------

def test_reader_parses_face_landmark_model() -> None:
    model = read_tflite(mediapipe_model_path())
    (inp,) = model.inputs
    assert model.tensors[inp].shape == (1, 192, 192, 3)
    assert [model.tensors[i].name for i in model.outputs] == ["conv2d_21", "conv2d_31"]
    ops = {op.op for op in model.operators}
    assert ops == {"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD", "DEQUANTIZE"}
    first = next(op for op in model.operators if op.op == "CONV_2D")
    assert first.options["padding"] == "SAME" and first.options["stride_h"] == 2
    kernel = model.constant(first.inputs[1])
    assert kernel.shape == (16, 3, 3, 3) and kernel.dtype == np.float32  # OHWI, widened from float16


def test_reader_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not a TFLite model"):
        read_tflite(bad)


def test_same_padding_is_tensorflows() -> None:
    assert same_padding(192, 3, 2) == (0, 1)  # the odd pixel goes after
    assert same_padding(96, 3, 1) == (1, 1)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(8, 2, 2) == (0, 0)


# --- the port against mediapipe ------------------------------------------------------------------------------

def test_port_matches_mediapipe_runtime() -> None:
    """The whole network in torch reproduces the landmark tensor mediapipe's TFLite interpreter computes."""
    image = _image(0)
    reference = _mediapipe_landmarks(image)
    net = face_landmark_graph().eval()
    with torch.no_grad():
        landmarks, flag = net(_to_tensor(image))
    ours = landmarks.flatten().numpy()
    assert ours.shape == reference.shape == (1404,)
    assert np.abs(reference).max() > 10  # landmark coordinates in 192-pixel units, not a degenerate output
    assert np.abs(ours - reference).max() < 5e-3, np.abs(ours - reference).max()
    assert flag.shape == (1, 1, 1, 1)


# --- the feature extractor ----------------------------------------------------------------------------------

def test_default_perceptual_is_cached_frozen_and_shaped() -> None:
    net = load_default_perceptual()
    assert net is load_default_perceptual()
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = net(x)
        again = net(x)
    expected = [(2, c, 256 // s, 256 // s) for _, c, s in STAGES.values()]
    assert [tuple(f.shape) for f in feats] == expected
    assert all(torch.equal(a, b) for a, b in zip(feats, again))
    assert all(torch.isfinite(f).all() for f in feats)
    # A face-mesh feature is not a constant: different images give different deep features.
    with torch.no_grad():
        other = net(torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(1)))
    assert (feats[-1] - other[-1]).abs().mean() > 1e-3


def test_features_are_the_taps_of_the_full_network() -> None:
    """The feature taps are the same tensors the full network computes (same graph, pruned)."""
    image = _to_tensor(_image(3))
    full = face_landmark_graph()
    from nice_core.carrier.perceptual import TFLiteGraph

    model = read_tflite(mediapipe_model_path())
    taps = TFLiteGraph(model, [STAGES["stage3"][0], "conv2d_21"])
    with torch.no_grad():
        stage3 = load_default_perceptual()(image)[2]
        tap3, lm = taps(image)
        lm_full, _ = full(image)
    assert torch.equal(stage3, tap3)
    assert torch.allclose(lm, lm_full)


def test_gradients_reach_the_input() -> None:
    net = load_default_perceptual()
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    y = torch.rand(1, 3, 64, 64)
    loss = sum((a - b).abs().mean() for a, b in zip(net(x), net(y)))
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_feature_input_checks() -> None:
    net = load_default_perceptual()
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 250, 256))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(1, 1, 256, 256))


# --- VGG-19 ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg_reference() -> tuple[VGG19Features, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = VGG19Features().eval()
    return net, {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("prefixed", [True, False])
def test_vgg19_loads_torchvision_state_dicts(tmp_path: Path, vgg_reference: tuple, prefixed: bool) -> None:
    ref, state = vgg_reference
    assert "features.0.weight" in state and "features.34.bias" in state and len(state) == 32
    saved = dict(state) if prefixed else {k.removeprefix("features."): v for k, v in state.items()}
    if prefixed:  # a whole torchvision model's dict also has the classifier, which is ignored
        saved["classifier.0.weight"] = torch.zeros(2, 3)
    path = tmp_path / "vgg19.pth"
    torch.save(saved, path)
    net = load_vgg19(path)
    assert not net.training and all(not p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        feats, expected = net(x), ref(x)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 48, 48), (2, 128, 24, 24), (2, 256, 12, 12),
                                               (2, 512, 6, 6), (2, 512, 3, 3)]
    assert all(torch.equal(a, b) for a, b in zip(feats, expected))
    assert all((f >= 0).all() for f in feats)  # ReLU outputs


def test_vgg19_normalises_with_imagenet_stats(vgg_reference: tuple) -> None:
    ref, _ = vgg_reference
    x = torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        conv1_2 = ref.features[:4]((x - mean) / std)
        ours = ref(x)[0]
    assert torch.allclose(ours, conv1_2)


def test_vgg19_wrong_shape_names_the_key(tmp_path: Path, vgg_reference: tuple) -> None:
    _, state = vgg_reference
    bad = dict(state)
    bad["features.10.weight"] = torch.zeros(256, 128, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(ValueError, match=r"features\.10\.weight has shape \(256, 128, 1, 1\)"):
        load_vgg19(path)
    missing = {k: v for k, v in state.items() if k != "features.28.bias"}
    torch.save(missing, path)
    with pytest.raises(ValueError, match=r"missing vgg19 keys: \['features\.28\.bias'\]"):
        load_vgg19(path)
