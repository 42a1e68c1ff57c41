"""The shipped C front-end (devices/frontend_c/) compiled by the host's gcc and called through
ctypes: the same C a device runs, on the host, so that tests and the stream benchmark can score the
int8 model on the features the C computes rather than on the Python front-end's."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ground.errors import UserError

from . import frontend_c


class HostFrontEnd:
    """The C front-end compiled by the host's gcc into a shared library, called through ctypes."""

    def __init__(self, fe_card: dict, folder: Path, cc: str = "gcc") -> None:
        if shutil.which(cc) is None:
            raise UserError(f"the C front-end needs a C compiler; '{cc}' is not on PATH (apt-get "
                            "install gcc).")  # fmt: skip
        frontend_c.write(folder, fe_card)
        self.coeffs, self.frames = int(fe_card["coefficients"]), int(fe_card["frames"])
        self.n_fft, self.hop = int(fe_card["n_fft"]), int(fe_card["hop"])
        self.clip_samples = int(fe_card["clip_samples"])
        so = folder / "tinyship_frontend.so"
        cmd = [
            cc,
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-shared",
            "-fPIC",
        ]
        subprocess.run([*cmd, "-o", str(so), str(folder / "tinyship_frontend.c"), "-lm"],
                       check=True, capture_output=True, text=True)  # fmt: skip
        self.lib = ctypes.CDLL(str(so))
        self.lib.tinyship_fe_state_bytes.restype = ctypes.c_size_t
        self.lib.tinyship_fe_push.restype = ctypes.c_uint32
        self.lib.tinyship_fe_window.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float,
                                                ctypes.c_int32]  # fmt: skip
        self.state = ctypes.create_string_buffer(self.lib.tinyship_fe_state_bytes())
        self.lib.tinyship_fe_reset(self.state)

    def push(self, pcm: np.ndarray) -> int:
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        return self.lib.tinyship_fe_push(self.state, pcm.ctypes.data_as(ctypes.c_void_p), len(pcm))

    def ready(self) -> bool:
        return bool(self.lib.tinyship_fe_ready(self.state))

    def clip(self, pcm: np.ndarray) -> None:
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        rc = self.lib.tinyship_fe_clip(self.state, pcm.ctypes.data_as(ctypes.c_void_p), len(pcm))
        if rc != 0:
            raise RuntimeError(f"tinyship_fe_clip returned {rc} for {len(pcm)} samples")

    def features(self) -> np.ndarray:
        out = np.zeros((self.coeffs, self.frames), np.float32)
        for c in range(self.coeffs):
            rc = self.lib.tinyship_fe_coefficient(
                self.state, c, out[c].ctypes.data_as(ctypes.c_void_p)
            )
            if rc != 0:
                raise RuntimeError(f"tinyship_fe_coefficient returned {rc}: no window yet")
        return out

    def window(self, scale: float, zero_point: int) -> np.ndarray:
        out = np.zeros(self.coeffs * self.frames, np.int8)
        rc = self.lib.tinyship_fe_window(self.state, out.ctypes.data, scale, zero_point)
        if rc != 0:
            raise RuntimeError(f"tinyship_fe_window returned {rc}: fewer frames than a window")
        return out

    def stream(
        self, pcm: np.ndarray, hop_frames: int, scale: float, zero_point: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Int8 windows every ``hop_frames`` frames of a stream, as a device scores it: the PCM
        pushed up to the last sample of each window's newest frame, the window read from the
        ring; and the sample where each window ends (its start + clip_samples)."""
        self.lib.tinyship_fe_reset(self.state)
        n = 1 + (len(pcm) - self.n_fft) // self.hop if len(pcm) >= self.n_fft else 0
        t = (n - self.frames) // hop_frames + 1 if n >= self.frames else 0
        rows, at = np.empty((t, self.coeffs * self.frames), np.int8), 0
        for k in range(t):
            upto = (k * hop_frames + self.frames - 1) * self.hop + self.n_fft
            self.push(pcm[at:upto])
            at = upto
            rows[k] = self.window(scale, zero_point)
        return rows, np.arange(t) * hop_frames * self.hop + self.clip_samples
