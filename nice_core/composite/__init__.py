"""Re-compositing: pasting processed face crops back into the full frames."""

from nice_core.composite.paste import paste_back

__all__ = ["paste_back"]
