"""Re-compositing: pasting processed face crops back into the full frames.

* :mod:`~nice_core.composite.paste`: :func:`paste_back`, one crop into one frame (replace or residual);
* :mod:`~nice_core.composite.render`: :func:`composite_video`, a fitted carrier over a whole video.
"""

from nice_core.composite.paste import paste_back
from nice_core.composite.render import CompositeConfig, CompositeResult, composite_video

__all__ = ["CompositeConfig", "CompositeResult", "composite_video", "paste_back"]
