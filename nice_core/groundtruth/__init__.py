"""Synthetic clips with a known answer, for measuring a refiner: ``nice-core bench make``.

* :mod:`~nice_core.groundtruth.clip`: from a real clip X, a temporally consistent synthetic face edit G (the
  ground truth) and a flickering proxy P of G made the way swappers fail;
* :mod:`~nice_core.groundtruth.edits`: the edit families (outline and interior geometry, skin tone and
  texture, fine identity detail).

Only synthetic edits of the person in the clip: nobody's face is put on anyone else.
"""
