"""jax.image cases whose values (and gradients of `sum(w * out)`) are recorded from JAX
(record_image.py, JAX only) and compared with nanofn.image (tests/test_image.py).

`resize` cases: `(input shape, output shape, method, antialias)`; `scale_and_translate`
cases add `(spatial_dims, scale, translation)`. The float64 inputs and weights are stored
in the npz with the results, so the recorder and the tests read the same numbers.
"""

from __future__ import annotations

METHODS = ["linear", "cubic", "cubic-pytorch", "lanczos3", "lanczos5", "area"]

RESIZE = {}
for _m in METHODS:
    for _aa in (True, False):
        RESIZE[f"up1d/{_m}/{_aa}"] = ((5,), (9,), _m, _aa)
        RESIZE[f"down2d/{_m}/{_aa}"] = ((8, 7), (3, 5), _m, _aa)
RESIZE["mixed/bilinear"] = ((6, 4), (3, 9), "bilinear", True)
RESIZE["batch/trilinear"] = ((2, 4, 5, 3, 2), (2, 6, 3, 4, 2), "trilinear", True)
RESIZE["batch/bicubic"] = ((2, 5, 4, 3), (2, 3, 7, 3), "bicubic", True)
RESIZE["same/lanczos3"] = ((3, 4), (3, 4), "lanczos3", True)
RESIZE["nearest/up"] = ((4,), (9,), "nearest", True)
RESIZE["nearest/2d"] = ((5, 7), (3, 10), "nearest", True)
RESIZE["nearest/odd"] = ((7, 3), (5, 11), "nearest", True)

SCALE_AND_TRANSLATE = {}
for _m in METHODS:
    for _aa in (True, False):
        SCALE_AND_TRANSLATE[f"st2d/{_m}/{_aa}"] = (
            (6, 5), (7, 8), _m, _aa, (0, 1), (1.3, 0.7), (0.4, -1.2))
SCALE_AND_TRANSLATE["st/last/linear"] = ((3, 6), (3, 4), "linear", True, (-1,), (0.6,), (0.9,))
SCALE_AND_TRANSLATE["st/channels/cubic"] = (
    (5, 4, 2), (9, 4, 2), "cubic", True, (0,), (1.9,), (-0.3,))
