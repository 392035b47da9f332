"""Backend plumbing: one code path for NumPy, JAX and torch arrays (Python array API).

Every numeric function of :mod:`theory` takes its namespace from its inputs with
``array_api_compat.array_namespace`` and computes in float64 on the inputs' device
(docs/index.md: one definition of each quantity, float64 numerics).  Validation that needs
concrete values (NaN checks, label ranges, singularity tests) runs only when the values
are concrete; inside ``jax.jit``/``vmap`` traces it is skipped, never faked.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import array_api_compat

Array = Any


def namespace(*arrays: Array):
    """Array-API namespace shared by ``arrays`` (``None`` entries are ignored)."""
    return array_api_compat.array_namespace(*[a for a in arrays if a is not None])


device_of = array_api_compat.device  #: the device of an array of any backend


def as_float64(x: Array, xp=None, like: Array | None = None) -> Array:
    """Convert to float64 on ``like``'s device (default: ``x``'s own); refuse silent float32 downcasts.

    JAX without ``jax_enable_x64`` turns float64 requests into float32; the toolkit
    compares with theory in float64, so that is an error, not a warning.
    """
    xp = xp or namespace(x)
    y = xp.asarray(x, dtype=xp.float64, device=device_of(x if like is None else like))
    if y.dtype != xp.float64:
        raise ValueError(
            "float64 is not available for this array backend (JAX needs "
            "jax.config.update('jax_enable_x64', True)); the toolkit computes statistics in float64"
        )
    return y


def is_concrete(x: Array) -> bool:
    """True unless ``x`` is an abstract JAX tracer (values unknown while tracing)."""
    for cls in type(x).__mro__:
        if cls.__name__ == "Tracer" and cls.__module__.startswith("jax"):
            return False
    return True


def to_bool(x: Array) -> bool | None:
    """Python bool of a 0-d array, or ``None`` when the value is not concrete."""
    if not is_concrete(x):
        return None
    return bool(x)


def to_float(x: Array) -> float:
    """Python float of a 0-d array on any backend/device."""
    if hasattr(x, "item"):
        return float(x.item())
    return float(x)


def to_float_dict(d: dict) -> dict:
    """Turn a dict of 0-d / 1-d arrays into JSON-ready Python floats / lists (None kept)."""
    out: dict[Any, Any] = {}
    for k, v in d.items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
            continue
        shape = getattr(v, "shape", None)
        if shape is None or len(shape) == 0:
            out[k] = to_float(v)
        else:
            out[k] = [to_float(e) for e in to_list(v)]
    return out


def to_list(v: Array) -> list:
    """The entries of ``v``, flattened, as a Python list (one device-to-host copy)."""
    if hasattr(v, "detach"):
        return v.detach().cpu().reshape(-1).tolist()
    import numpy as np

    return np.asarray(v).reshape(-1).tolist()


def _host_view(x: Array):
    """A zero-copy NumPy view of a NumPy array or a CPU torch tensor without autograd, else ``None``."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_torch_array(x) and x.device.type == "cpu" and not x.requires_grad:
        return x.numpy()
    return None


def on_host(x: Array) -> bool:
    """True for NumPy arrays and CPU torch tensors: arrays that BLAS can update in place."""
    return _host_view(x) is not None


def zeros_gram(p: int, xp, like: Array) -> Array:
    """A ``(p, p)`` float64 zero matrix for :func:`gram_accumulate` on ``like``'s backend and device.

    For CPU torch tensors it is Fortran-ordered, selecting SciPy's in-place ``dsyrk``; for NumPy
    arrays and everything else it is a plain array (see :func:`gram_accumulate` for why).
    """
    if array_api_compat.is_torch_array(like) and _host_view(like) is not None:
        import numpy as np
        import torch

        return torch.from_numpy(np.zeros((p, p), dtype=np.float64, order="F"))
    return xp.zeros((p, p), dtype=xp.float64, device=device_of(like))


def gram_accumulate(S: Array, D: Array) -> Array:
    """``S + D^T D``, only the **upper triangle** guaranteed (symmetrise with :func:`symmetric_from_upper`).

    On the host, BLAS ``syrk`` in place (half a GEMM's flops; torch's CPU matmul runs a full GEMM): SciPy's
    ``dsyrk`` for a Fortran-ordered ``S`` (CPU torch, :func:`zeros_gram`), NumPy's matmul for a C-ordered one
    (NumPy); elsewhere the plain ``S + D^T D``.  Each input type keeps its BLAS work in one library: two thread
    pools on the same cores slowed 60,000 x 512 features 2-4x on 2 cores (there, best of 5: torch 0.43 s with
    ``dsyrk`` on 1024-row blocks, 0.48 s with NumPy's matmul on 4096; NumPy 0.38 s with its matmul, 0.57 s with
    SciPy's BLAS beside it).
    """
    S_host, D_host = _host_view(S), _host_view(D)
    if S_host is None or D_host is None or D.shape[0] == 0:
        return S + D.T @ D
    if not S_host.flags.f_contiguous:
        S_host += D_host.T @ D_host
        return S
    import numpy as np
    from scipy.linalg.blas import dsyrk

    Dt = np.asarray(D_host, dtype=np.float64).T  # (p, B): a Fortran-ordered view of a C-ordered D
    out = dsyrk(1.0, Dt, beta=1.0, c=S_host, trans=0, lower=0, overwrite_c=1)
    if out.ctypes.data != S_host.ctypes.data:  # f2py made a copy (unexpected layout): write it back
        S_host[...] = out
    return S


def host_block_rows(x: Array) -> int | None:
    """Row-block size for streaming ``x`` on the host, ``None`` off the host (one block): 1024 rows for
    CPU torch (in-place ``dsyrk``), 4096 for NumPy (a ``p x p`` product per block, amortised)."""
    if _host_view(x) is None:
        return None
    return 1024 if array_api_compat.is_torch_array(x) else 4096


@contextmanager
def host_threads_for_blas(x: Array):
    """Inside the block, torch's own CPU ops run in one thread when ``x`` is a CPU torch tensor.

    The accumulator interleaves small torch ops (conversion, gather, class sums) with BLAS
    ``syrk`` calls; torch's OpenMP threads and OpenBLAS's threads both spin between calls, and on
    a machine with few cores the two pools fight: on 2 cores, 60,000 x 512 features took 1.18 s
    with 2 + 2 threads, 0.39 s with torch at 1 and BLAS at 2.
    The torch ops are memory-bound and lose nothing in one thread.  Restored on exit.
    """
    if not (array_api_compat.is_torch_array(x) and x.device.type == "cpu"):
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def gram(D: Array) -> Array:
    """``D^T D``.  NumPy's matmul runs BLAS ``syrk`` for ``a.T @ a`` (half a GEMM's flops) and fills both
    triangles; torch on the CPU runs a full GEMM, so CPU tensors without autograd go through NumPy (zero-copy views
    both ways).  Measured against ``dsyrk`` into a zeroed matrix plus a torch mirror of the triangle, best of 30 on
    2 cores: 0.14 vs 8.0 ms at 2000 x 64, 1.0 vs 2.8 ms at 1024 x 256, 12.8 vs 20.1 ms at 4096 x 512.  Everything
    else (GPU tensors, JAX under ``jit``) is the plain product."""
    view = _host_view(D) if array_api_compat.is_torch_array(D) else None
    if view is not None and D.shape[0] > 0:
        import torch

        return torch.from_numpy(view.T @ view)
    return D.T @ D


def symmetric_from_upper(S: Array, xp) -> Array:
    """The symmetric matrix whose upper triangle is that of ``S``."""
    upper = xp.triu(S)
    return upper + xp.triu(S, k=1).T


def eye(n: int, xp, like: Array | None = None) -> Array:
    """The float64 ``n x n`` identity on ``like``'s device (the default device without ``like``)."""
    return xp.eye(n, dtype=xp.float64, device=None if like is None else device_of(like))


EPS = 2.220446049250313e-16  # float64 machine epsilon


def is_nonsingular(low: float, top: float, dim: int) -> bool:
    """The toolkit's numerical-singularity test for a ``dim x dim`` positive (semi)definite matrix: its smallest
    eigenvalue (or pivot) ``low`` is above ``dim * eps * top``, ``top`` its largest.  False for NaN."""
    return low > dim * EPS * top


def numerical_rank(evals: Array, xp) -> tuple[int, float]:
    """``(rank, tolerance)`` of a ``dim x dim`` positive semidefinite matrix from its eigenvalues ``evals``
    (``dim,``): the eigenvalues above ``tolerance = dim * eps * max|evals|`` count, the rule of
    :func:`is_nonsingular` (so ``rank == dim`` exactly when that test passes).  Needs concrete values."""
    tol = int(evals.shape[0]) * EPS * to_float(xp.max(xp.abs(evals)))
    return int(to_float(xp.sum(xp.astype(evals > tol, xp.float64)))), tol


class SingularMatrixError(ValueError):
    """A matrix failed the toolkit's singularity test (:func:`is_nonsingular`); a ``ValueError``, so callers that
    catch ``ValueError`` see no change, while those with a fallback (the minimum-norm least-squares solve,
    the SNR on the support) catch exactly this."""


def check_nonsingular(low: float, top: float, dim: int, what: str, detail: str, advice: str = "") -> None:
    """Raise :class:`SingularMatrixError` naming ``what`` (and giving ``advice``) unless :func:`is_nonsingular`;
    ``detail`` is formatted with ``low`` and ``top`` (e.g. ``"smallest eigenvalue {low:.3e}"``)."""
    if not is_nonsingular(low, top, dim):
        tail = f"; {advice}" if advice else ""
        raise SingularMatrixError(
            f"{what} is singular or not positive definite ({detail.format(low=low, top=top)}){tail}"
        )


def spd_eigh(K: Array, xp, what: str, advice: str = "") -> tuple[Array, Array]:
    """``eigh`` of a symmetric matrix that must be positive definite: :func:`check_nonsingular` on its eigenvalues
    (skipped inside JAX traces)."""
    evals, evecs = xp.linalg.eigh(K)
    if is_concrete(evals):
        top = to_float(xp.max(xp.abs(evals)))
        check_nonsingular(to_float(evals[0]), top, K.shape[0], what, "smallest eigenvalue {low:.3e}, largest {top:.3e}",
                          advice)
    return evals, evecs


def solve_lower_triangular(L: Array, B: Array, xp) -> Array:
    """``L^{-1} B`` for lower-triangular ``L`` by forward substitution: ``torch.linalg.solve_triangular``,
    ``jax.scipy.linalg.solve_triangular`` or SciPy's for NumPy; a general ``xp.linalg.solve`` otherwise."""
    if array_api_compat.is_torch_array(L):
        import torch

        return torch.linalg.solve_triangular(L, B, upper=False)
    if array_api_compat.is_jax_array(L):
        import jax.scipy.linalg

        return jax.scipy.linalg.solve_triangular(L, B, lower=True)
    if array_api_compat.is_numpy_array(L):
        import scipy.linalg

        return scipy.linalg.solve_triangular(L, B, lower=True)
    return xp.linalg.solve(L, B)
