import numpy as np
import pytest

from nice_core.composite import paste_back
from nice_core.face.alignment import crop_matrix
from nice_core.face.mask import face_mask, face_oval_mask, hand_mask
from nice_core.face.pose import _MODEL_POINTS, _POSE_LANDMARKS, head_pose

from conftest import psnr


def ellipse_landmarks(size: int) -> np.ndarray:
    from nice_core.face.landmarks import face_oval_indices

    pts = np.zeros((478, 3), np.float32)
    oval = face_oval_indices()
    t = np.linspace(0, 2 * np.pi, len(oval), endpoint=False)
    pts[list(oval), 0] = size / 2 + 0.3 * size * np.cos(t)
    pts[list(oval), 1] = size / 2 + 0.4 * size * np.sin(t)
    return pts


def test_oval_mask_is_soft_and_stays_inside_the_oval():
    size = 128
    mask = face_oval_mask(ellipse_landmarks(size), size, feather=0.05)
    assert mask.dtype == np.float32 and mask.min() == 0.0 and mask.max() == pytest.approx(1.0)
    assert mask[64, 64] == pytest.approx(1.0)
    yy, xx = np.mgrid[:size, :size]
    outside = ((xx - 64) / (0.3 * size)) ** 2 + ((yy - 64) / (0.4 * size)) ** 2 > 1.02
    assert mask[outside].max() < 1e-3
    soft = (mask > 0.05) & (mask < 0.95)
    assert soft.sum() > 200  # a real feathered band, not a hard edge


def test_a_hand_is_cut_out_of_the_mask():
    size = 128
    landmarks = ellipse_landmarks(size)
    # A hand whose fingers point up across the lower-left of the face.
    hand = np.zeros((21, 2), np.float32)
    hand[0] = (40, 125)
    for finger, base_x in enumerate((30, 38, 46, 54, 62)):
        for joint in range(4):
            hand[1 + 4 * finger + joint] = (base_x, 105 - 10 * joint)
    plain = face_mask(landmarks, [], size, 0.03)
    occluded = face_mask(landmarks, [hand], size, 0.03)
    assert occluded[80, 46] < 0.05 < plain[80, 46]
    assert occluded[40, 90] == pytest.approx(plain[40, 90])
    assert hand_mask([], (size, size), 4.0).max() == 0.0


def project(points3d, yaw_deg, size=(480, 640)):
    from nice_core.face.pose import rotation_to_euler  # noqa: F401  (same convention as the module)

    yaw = np.radians(yaw_deg)
    rot = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    cam = points3d @ rot.T + np.array([0, 0, 3000.0])
    focal = max(size)
    return np.stack([focal * cam[:, 0] / cam[:, 2] + size[1] / 2, focal * cam[:, 1] / cam[:, 2] + size[0] / 2], 1)


@pytest.mark.parametrize("yaw", [0.0, 20.0, -30.0])
def test_head_pose_recovers_a_known_yaw(yaw):
    landmarks = np.zeros((478, 3), np.float32)
    landmarks[list(_POSE_LANDMARKS), :2] = project(_MODEL_POINTS, yaw)
    angles = head_pose(landmarks, (480, 640))
    assert angles[0] == pytest.approx(yaw, abs=0.5)
    assert abs(angles[1]) < 0.5 and abs(angles[2]) < 0.5


def test_paste_back_is_exact_outside_and_faithful_inside(sample):
    from nice_core.io import VideoReader

    frame = VideoReader(sample)[100]
    size = 256
    matrix = crop_matrix(np.array([330.0, 170.0, np.log(110.0), 0.1]), size)
    import cv2

    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (128, 128), (80, 100), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 5)
    out = paste_back(frame, crop, mask, matrix)
    weight = cv2.warpAffine(mask, np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2], frame.shape[1::-1])
    assert np.array_equal(out[weight == 0], frame[weight == 0])
    assert psnr(out[weight > 0.5], frame[weight > 0.5]) >= 40.0
    # A changed crop changes only pixels inside the mask's support.
    changed = paste_back(frame, np.zeros_like(crop), mask, matrix)
    differs = np.any(changed != frame, axis=2)
    assert differs.any() and not differs[weight == 0].any()


def test_residual_paste_back_keeps_detail_and_applies_the_change(sample):
    import cv2

    from nice_core.io import VideoReader

    frame = VideoReader(sample)[216]
    size = 128  # much smaller than the face: a replaced crop would lose detail
    matrix = crop_matrix(np.array([330.0, 170.0, np.log(190.0), 0.0]), size)
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((size, size), np.float32)
    cv2.circle(mask, (64, 64), 40, 1.0, -1)
    assert np.array_equal(paste_back(frame, crop, mask, matrix, original_crop=crop), frame)
    brighter = np.clip(crop.astype(int) + 20, 0, 255).astype(np.uint8)
    out = paste_back(frame, brighter, mask, matrix, original_crop=crop)
    centre = (slice(150, 190), slice(310, 350))
    gained = out[centre].astype(int) - frame[centre]
    assert 18 <= np.median(gained) <= 20
    # Replacing with the same small crop instead loses the detail the residual mode keeps.
    replaced = paste_back(frame, crop, mask, matrix)
    assert psnr(replaced[centre], frame[centre]) < 38


def test_paste_back_checks_shapes(sample):
    with pytest.raises(ValueError, match="crop"):
        paste_back(np.zeros((10, 10, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((7, 7)),
                   np.eye(2, 3))


def test_the_mesh_and_the_face_oval_come_from_mediapipes_data_without_loading_mediapipe():
    """The fit, the 3D prior and compositing need mediapipe's edge lists, not its runtime (2 s of a job's
    start): the lists are mediapipe's own, read from its installed file, and mediapipe stays unloaded."""
    import subprocess
    import sys

    code = ("import sys; from nice_core.face.mesh import mesh_topology; "
            "from nice_core.face.landmarks import face_oval_indices; "
            "from nice_core.face.connections import face_mesh_connections as c; "
            "t, holes = mesh_topology(); o = face_oval_indices(); loaded = 'mediapipe' in sys.modules; "
            "import mediapipe as mp; m = mp.solutions.face_mesh_connections; "
            "same = all(getattr(c(), k) == getattr(m, k) for k in dir(m) if k.startswith('FACEMESH_')); "
            "print(loaded, same, len(vars(c())), t.shape[0], len(holes), len(o))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, same, sets, triangles, holes, oval = done.stdout.split()[-6:]
    assert (loaded, same) == ("False", "True")
    assert int(sets) >= 10 and int(triangles) > 850 and int(holes) == 3 and int(oval) == 36
