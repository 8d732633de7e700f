"""What a run takes in: every video a workflow run processes, and the datasets they come from.

* :mod:`~nice_core.inputs.videos`: the run's videos, from ``config.yaml`` (one :class:`VideoSpec` each);
* :mod:`~nice_core.inputs.ffpp`: FaceForensics++ trees and CSV lists of (target, proxy, identity) triples.

Pure Python (no video libraries): the workflow reads this while it builds the DAG.
"""
