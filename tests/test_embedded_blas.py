"""numpy's bundled OpenBLAS is limited to one thread once the Whisper model loads."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from asr.embedded.blas import limit_blas_threads


def test_bundled_openblas_limited_to_one_thread() -> None:
    libs = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("*openblas*.so*"))
    if not libs:
        pytest.skip("this numpy has no bundled OpenBLAS")
    assert limit_blas_threads(1) is True
    lib = ctypes.CDLL(str(libs[0]))
    getter = next(
        getattr(lib, n)
        for n in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_")
        if hasattr(lib, n)
    )
    assert getter() == 1
    a = np.arange(80 * 201, dtype=np.float32).reshape(80, 201) / 1e4
    assert np.allclose(a @ a.T, np.einsum("ij,kj->ik", a, a), rtol=1e-5)
