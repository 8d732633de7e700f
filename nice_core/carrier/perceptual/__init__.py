"""Multi-layer perceptual features for the carrier's loss, from weights that ship inside a dependency.

* :func:`load_default_perceptual` / :class:`MediapipeFaceFeatures`: mediapipe's face-mesh CNN
  (``mediapipe/modules/face_landmark/face_landmark.tflite``, Apache-2.0 with the mediapipe wheel), parsed
  from the ``.tflite`` FlatBuffer in pure Python and rebuilt in torch; five taps at strides 2-32. Nothing is
  downloaded. Provenance and the layer table: :mod:`nice_core.carrier.perceptual.mediapipe_face`.
* :class:`VGG19Features` / :func:`load_vgg19`: VGG-19 (torchvision's ``features`` layout, no torchvision)
  for a state dict the user supplies; no weights ship with it.

Both take RGB ``(B, 3, H, W)`` in ``[0, 1]`` and return a list of feature maps, shallow to deep.
"""

from nice_core.carrier.perceptual.mediapipe_face import (
    FACE_LANDMARK_MODEL,
    STAGES,
    MediapipeFaceFeatures,
    face_landmark_graph,
    load_default_perceptual,
    mediapipe_model_path,
)
from nice_core.carrier.perceptual.tflite_reader import TFLiteModel, read_tflite
from nice_core.carrier.perceptual.tflite_torch import TFLiteGraph
from nice_core.carrier.perceptual.vgg import VGG19_LAYERS, VGG19Features, load_vgg19

__all__ = [
    "FACE_LANDMARK_MODEL",
    "STAGES",
    "VGG19_LAYERS",
    "MediapipeFaceFeatures",
    "TFLiteGraph",
    "TFLiteModel",
    "VGG19Features",
    "face_landmark_graph",
    "load_default_perceptual",
    "load_vgg19",
    "mediapipe_model_path",
    "read_tflite",
]
