"""Optional accelerator: Adam/AdamW and SGD as one fused pass over the flat buffers, with numba.

NumPy's Adam step is a dozen passes (SGD with momentum four) over the parameters (each operation reads and writes
the whole buffer); this kernel does the same float32/float64 operations, in the same
order, element by element in one pass, on one thread (a second would only contend with
OpenBLAS and other processes for the cores). It is used only when numba is
installed (``pip install 'backprop-cli[fast]'``), the network is large enough for the
pass count to matter, and BACKPROP_NUMBA is not 0; everything works the same without it.
The arithmetic is identical (no fast-math, no fused multiply-add), so the results are the
NumPy path's to the last bit: tests/test_optimizers.py checks that where numba is present.
"""

from __future__ import annotations

import os

import numpy as np

MIN_PARAMS = 50_000  # below this the NumPy path is as fast and there is nothing to compile

_kernel = None


def _build():
    import numba

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def adam_step(p, g, m, v, c1, c2, b2, inv_bias2_sqrt, eps, step, wd, decay):
        for i in range(p.size):
            pi = p[i] * decay  # AdamW's decoupled decay (decay = 1 for Adam)
            gi = g[i]
            if wd != 0:
                gi = pi * wd + gi  # Adam's L2 term, folded into the gradient
            mi = m[i] + (gi - m[i]) * c1
            vi = v[i] * b2 + (gi * gi) * c2
            m[i] = mi
            v[i] = vi
            p[i] = pi - (mi / ((np.sqrt(vi) * inv_bias2_sqrt) + eps)) * step

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def sgd_step(p, g, buf, lr, momentum, damp, wd, first, nesterov):
        for i in range(p.size):
            gi = g[i]
            if wd != 0:
                gi = p[i] * wd + gi
            if momentum != 0:
                if first:
                    bi = gi
                elif damp != 1:
                    bi = buf[i] * momentum + gi * damp  # damp = 1 - dampening
                else:
                    bi = buf[i] * momentum + gi
                buf[i] = bi
                gi = bi * momentum + gi if nesterov else bi
            p[i] = p[i] - gi * lr

    return {"adam": adam_step, "sgd": sgd_step}


def kernel(name: str, params: np.ndarray):
    """The fused kernel for optimizer ``name``, or None where the NumPy path should be used."""
    global _kernel
    if params.size < MIN_PARAMS or os.environ.get("BACKPROP_NUMBA", "1") == "0":
        return None
    if _kernel is None:
        try:
            _kernel = _build()
        except ImportError:
            _kernel = False
    return _kernel[name] if _kernel else None
