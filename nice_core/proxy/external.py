"""Running an external face swapper (FSGAN or any other tool) through a command template.

A template is one command line with placeholders:

* ``{target}``, ``{identity}``, ``{output}``: paths (quoted for you);
* ``{device}``: ``cpu`` or ``cuda:N``; ``{device_args}``: the preset's device flags for that device;
* ``{tool_root}``: where the user installed the tool (``external.tool_root`` in ``config.yaml``);
* ``{python}``: this Python interpreter; ``{ffmpeg}``: the ffmpeg binary nice-core uses.

The command runs without a shell (the template is split like a shell would, then each piece filled), its
output goes to a log file, and it must write ``{output}``, which is given as a temporary name and renamed
only after :func:`nice_core.proxy.check.check_proxy` accepts it against the target.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nice_core.config import default
from nice_core.errors import NiceError
from nice_core.io.atomic import refuse_input_overwrite, temporary_sibling


class ExternalToolError(NiceError):
    """The external swapper is missing, failed, or wrote something unusable."""


@dataclass(frozen=True)
class SwapperPreset:
    """A known tool: its command template, device flags and the files it needs."""

    template: str
    cpu_args: str = ""
    cuda_args: str = ""
    requires: tuple[str, ...] = ()
    notes: str = ""


PRESETS: dict[str, SwapperPreset] = {
    # FSGAN v2 (github.com/YuvalNirkin/fsgan): the user installs its code and requests its weights.
    "fsgan": SwapperPreset(
        template="python {tool_root}/fsgan/inference/swap.py {identity} -t {target} -o {output} --finetune "
                 "{device_args}",
        cpu_args="--cpu_only",
        cuda_args="--gpus {gpu}",
        requires=("python", "{tool_root}/fsgan/inference/swap.py",
                  "{tool_root}/weights/nfv_msrunet_256_1_2_reenactment_v2.1.pth",
                  "{tool_root}/weights/ijbc_msrunet_256_1_2_inpainting_v2.pth",
                  "{tool_root}/weights/ijbc_msrunet_256_1_2_blending_v2.pth"),
        notes="FSGAN's code and weights are not shipped; set external.tool_root to its checkout.",
    ),
    # The built-in swapper run as an external tool: a real command that behaves like one.
    "nice-core": SwapperPreset(
        template="{python} -m nice_core swap --identity {identity} --target {target} -o {output} -q",
        requires=("{python}",),
    ),
}


@dataclass
class ExternalSwapper:
    """An external swapper: a preset name or a raw ``template`` (with its own ``requires``)."""

    preset: str | None = None
    template: str | None = None
    tool_root: str = default("external.tool_root")
    requires: list[str] = field(default_factory=list)
    device: str = default("external.device")

    def __post_init__(self) -> None:
        if (self.preset is None) == (self.template is None):
            raise ValueError("give exactly one of preset or template")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown swapper preset {self.preset!r}; known: {', '.join(sorted(PRESETS))}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    @property
    def _preset(self) -> SwapperPreset:
        if self.preset is not None:
            return PRESETS[self.preset]
        return SwapperPreset(template=self.template or "", requires=tuple(self.requires))

    def _fill(self, text: str, **values: str) -> str:
        from nice_core.io import ffmpeg_exe

        gpu = self.device.split(":", 1)[1] if ":" in self.device else "0"
        return text.format(tool_root=self.tool_root or ".", device=self.device, gpu=gpu, python=sys.executable,
                           ffmpeg=ffmpeg_exe(), **values)

    def missing(self) -> list[str]:
        """What the tool needs and is not there: programs not on ``PATH`` and files that do not exist."""
        absent = []
        for need in self._preset.requires:
            item = self._fill(need)
            if "/" in item:
                if not Path(item).exists():
                    absent.append(f"file {item}")
            elif shutil.which(item) is None:
                absent.append(f"program {item!r} (not on PATH)")
        return absent

    def check_available(self) -> None:
        """Raise :class:`ExternalToolError` naming everything missing; for use before a workflow starts."""
        if absent := self.missing():
            hint = f" ({self._preset.notes})" if self._preset.notes else ""
            raise ExternalToolError(f"external swapper {self.preset or 'template'} is not usable: missing "
                                    f"{'; '.join(absent)}{hint}")

    def command(self, target: str | Path, identity: str | Path, output: str | Path) -> list[str]:
        """The argument list for one run (no shell)."""
        preset = self._preset
        device_args = self._fill(preset.cpu_args if self.device == "cpu" else preset.cuda_args)
        args = []
        for token in shlex.split(preset.template):
            if token == "{device_args}":
                args.extend(shlex.split(device_args))
            else:
                args.append(self._fill(token, target=str(target), identity=str(identity), output=str(output),
                                       device_args=device_args))
        return args

    def run(self, target: str | Path, identity: str | Path, output: str | Path, log: str | Path,
            timeout_s: float | None = None) -> Path:
        """Run the tool, log its output to ``log``, check its video against ``target``, move it to ``output``.

        Raises:
            ExternalToolError: tool missing, non-zero exit, no output, or an output that does not match.
        """
        from nice_core.proxy.check import check_proxy

        self.check_available()
        output, log = Path(output), Path(log)
        refuse_input_overwrite(output, [target, identity])
        tmp = temporary_sibling(output, keep_suffix=True)
        tmp.unlink()  # the tool creates it; some tools refuse to overwrite
        log.parent.mkdir(parents=True, exist_ok=True)
        args = self.command(target, identity, tmp)
        try:
            with open(log, "w") as handle:
                handle.write("$ " + shlex.join(args) + "\n")
                handle.flush()
                try:
                    done = subprocess.run(args, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout_s)
                except FileNotFoundError:
                    raise ExternalToolError(f"cannot start {args[0]!r}") from None
                except subprocess.TimeoutExpired:
                    raise ExternalToolError(f"external swapper timed out after {timeout_s} s; see {log}") from None
            if done.returncode != 0:
                last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
                raise ExternalToolError(f"external swapper exited with status {done.returncode}: "
                                        f"{last[0][:200] if last else ''} (full log: {log})")
            if not tmp.is_file():
                raise ExternalToolError(f"external swapper finished but wrote no {output.suffix} file (log: {log})")
            check_proxy(target, tmp)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
        return output
