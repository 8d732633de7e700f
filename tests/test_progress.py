import io

from nice_core import progress as progress_module
from nice_core.progress import progress


def test_log_file_progress_is_plain_lines(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_S", 0.0)
    log = io.StringIO()
    assert list(progress(range(3), total=3, desc="detect", stream=log)) == [0, 1, 2]
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].startswith("detect: 1/3 frames (33%)")
    assert lines[-2].startswith("detect: 3/3 frames (100%)")
    assert lines[-1].startswith("detect: 3 frames done in ")


def test_disabled_progress_writes_nothing():
    log = io.StringIO()
    assert list(progress("ab", enabled=False, stream=log)) == ["a", "b"]
    assert log.getvalue() == ""
