"""One BLAS thread for numpy in the server process.

The only BLAS call on the decode path is faster-whisper's log-Mel filter bank, a small
(80 x 201) by (201 x frames) product. OpenBLAS runs it on a thread per core and then keeps
its idle threads spinning: on 2 cores that spin was 43% of a draft decode's CPU time (0.208
CPU-s against 0.118 with one BLAS thread, for 3 s of audio), and it took CPU from the other
decode worker. numpy bundles its own OpenBLAS, so the environment variable
``OPENBLAS_NUM_THREADS`` would have to be set before numpy is imported; this sets the limit
at run time through the library's own call, as ``threadpoolctl`` does. Best effort: a numpy
without a bundled OpenBLAS is left as it is.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

__all__ = ["limit_blas_threads"]

logger = logging.getLogger("asr.embedded.blas")

# The setter's name in numpy's bundled OpenBLAS, newest builds first (scipy-openblas 0.3.2x+
# with 64-bit integers, then older numpy wheels' openblas64_).
_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


@functools.cache
def limit_blas_threads(threads: int = 1) -> bool:
    """Limit numpy's bundled OpenBLAS to ``threads``; once per process.

    Returns:
        Whether a bundled OpenBLAS was found and limited.
    """
    import numpy

    libs = Path(numpy.__file__).parent.parent / "numpy.libs"
    for path in sorted(libs.glob("*openblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                logger.debug("numpy's OpenBLAS (%s) limited to %d thread(s)", path.name, threads)
                return True
    logger.debug("no bundled OpenBLAS found next to numpy; BLAS threads left as they are")
    return False
