"""Host X for column coordinate descent (``native_cd.c``): products and working-set columns
(``native_hostx.c``).

:class:`HostX` holds X (m, n) as given, dense or a canonical CSR array in its own dtype (float32
or float64; never a float64 copy), and forms ``X w + b`` and ``Xᵀu`` in float64 and the columns
of a working set (:class:`Columns`: CSC in X's dtype, or a dense column-major block). With the
native library (:func:`jaxlogreg.kernels.native.available`) these and the subproblem solver
(:func:`solve_subproblem`, proximal Newton with Anderson-accelerated coordinate descent) run in C
through ctypes; every array is checked here (shape, dtype, contiguity, index bounds) before C
reads it. Without it the products are NumPy/SciPy ones and :func:`solve_subproblem` is refused.
:func:`gap_dual_point` and :func:`gap_bound` are the binary duality gap's passes over the rows
(``native_gap.c``), for :mod:`jaxlogreg.training.certificate`, which has their JAX forms.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from jaxlogreg.core import checks
from jaxlogreg.core.sparse import as_csr
from jaxlogreg.kernels import native

BLOCK_ELEMENTS = 1 << 20  # dense float32 X is read in row blocks of this size, cast to float64
REUSE_SHARE = 0.25  # of X's entries, at most, in columns kept to be copied into the next set
_P, _I64, _I32, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_double
_SIGNATURES = {
    "solve": ((_I64, _I64, _P, _P, _P, _P, _P, _F64, _F64, _I32, _F64, _I64, _I64, _F64, _F64,
               _F64, _F64, _I64, _I64, _I64, _P, _P, _P), _I64),
    "csr_matvec": ((_I64, _P, _P, _P, _P, _F64, _P), None),
    "csr_rmatvec": ((_I64, _I64, _P, _P, _P, _P, _P), None),
    "csr_columns": ((_I64, _P, _P, _P, _P, _P, _P, _P, _P), None),
    "copy_columns": ((_I64, _P, _P, _P, _P, _P, _P, _P), None),
    "column_counts": ((_I64, _I64, _P, _P), None),
    "gap_dual_point": ((_I64, _P, _P, _P, _I64, _P, _P, _P), None),
    "gap_bound": ((_I64, _I64, _P, _P, _P, _P, _P, _F64, _F64, _F64, _P), None),
}
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
MAX_ANDERSON = 16  # CD_MAX_ANDERSON in native_cd.c
OWN_PAGES_BYTES = 1 << 22  # buffers of at least this size are mapped from the OS (own_pages)


class NewtonSettings(NamedTuple):
    """Bounds of :func:`solve_subproblem` (module ``working_set`` documents them)."""

    max_newton: int
    max_epochs: int
    forcing: float
    cd_floor: float
    armijo: float
    slack_ulps: float
    max_halvings: int
    max_flat: int
    anderson: int = 0  # Anderson extrapolation every this + 1 sweeps (0: none), <= MAX_ANDERSON


@functools.cache
def _function(name: str, dtype: np.dtype | None = None) -> Any:
    suffix = "" if dtype is None else f"_{_SUFFIX[dtype]}"
    fn = getattr(native.library(), f"jaxlogreg_cd_{name}{suffix}")
    fn.argtypes, fn.restype = _SIGNATURES[name]
    return fn


def own_pages(count: int, dtype: Any) -> np.ndarray:
    """An uninitialised (count,) array; from :data:`OWN_PAGES_BYTES` on, on an anonymous
    mapping of its own, unmapped when the array is freed. Only the pages written become
    resident: NumPy advises its arrays of 4 MiB and more for 2 MiB huge pages, so a work array
    used in part was resident nearly whole. And glibc cannot keep the block in its heap for
    later allocations (it raises its mmap threshold after a large block is freed)."""
    dtype = np.dtype(dtype)
    nbytes = count * dtype.itemsize
    if nbytes < OWN_PAGES_BYTES or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.empty(count, dtype)
    pages = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(pages, dtype, count)


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def _vector(a: Any, length: int | None, name: str) -> np.ndarray:
    """``a`` as a contiguous float64 (length,) array (None: any length); ValueError naming it
    otherwise."""
    a = np.ascontiguousarray(a, np.float64)
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        shape = "a 1-D shape" if length is None else f"shape ({length},)"
        raise ValueError(f"{name} must have {shape}, got {a.shape}")
    return a


def _checked(a: np.ndarray, dtype: Any, length: int, name: str) -> np.ndarray:
    """``a`` itself when it is a C-contiguous (length,) array of ``dtype``, else ValueError."""
    if a.dtype != dtype or a.shape != (length,) or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a contiguous ({length},) array of {np.dtype(dtype)}, "
                         f"got shape {a.shape} and dtype {a.dtype}")
    return a


class Columns(NamedTuple):
    """Columns of X (m, k): CSC (colptr int64 (k + 1,), rowind int32, vals) or, colptr None,
    vals a Fortran-ordered (m, k) block; vals in X's dtype."""

    shape: tuple[int, int]
    colptr: np.ndarray | None
    rowind: np.ndarray | None
    vals: np.ndarray

    def float64(self) -> Any:
        """The columns as float64 SciPy CSC or a dense array (for the fallback solver)."""
        if self.colptr is None:
            return np.asarray(self.vals, np.float64)
        return sp.csc_array((self.vals.astype(np.float64), self.rowind, self.colptr),
                            shape=self.shape)

    def check(self) -> None:
        """ValueError unless C may read these arrays: the layout above, colptr from 0,
        non-decreasing, ending at the stored entries, rows in [0, m)."""
        (m, k), vals = self.shape, self.vals
        if vals.dtype not in _SUFFIX:
            raise ValueError(f"the columns' values must be float32 or float64, got {vals.dtype}")
        if self.colptr is None:
            if vals.shape != (m, k) or not vals.flags.f_contiguous:
                raise ValueError(f"dense columns must be a Fortran-ordered ({m}, {k}) array, got "
                                 f"shape {vals.shape}")
            return
        colptr = _checked(self.colptr, np.int64, k + 1, "colptr")
        nnz = vals.shape[0]
        _checked(vals, vals.dtype, nnz, "the columns' values")
        rowind = _checked(self.rowind, np.int32, nnz, "rowind")
        if colptr[0] != 0 or colptr[-1] != nnz or np.any(np.diff(colptr) < 0):
            raise ValueError(f"colptr must go from 0 to {nnz} without decreasing")
        if nnz and (int(rowind.min()) < 0 or int(rowind.max()) >= m):
            raise ValueError(f"rowind must lie in [0, {m})")


class HostX(NamedTuple):
    """X (m, n) on the host in its own dtype: dense C-ordered, or CSR (``indptr`` int64,
    ``indices`` int32, ``counts`` the entries per column); ``use_native``: products in C.
    Made by :meth:`of`, which checks what C reads (the fields are passed to C as they are)."""

    shape: tuple[int, int]
    dense: np.ndarray | None
    indptr: np.ndarray | None
    indices: np.ndarray | None
    data: np.ndarray | None
    counts: np.ndarray | None
    use_native: bool

    @classmethod
    def of(cls, X: Any, use_native: bool | None = None, *, checked: bool = False) -> HostX:
        """Checked X: dense (finite) or sparse (:func:`as_csr`); values other than float32
        become float64. ``use_native`` None: whenever the library is available. ``checked``:
        X is a :class:`~jaxlogreg.training.problem.Problem`'s (a sparse one a canonical CSR
        array that :func:`as_csr` made), not checked again."""
        use_native = native.available() if use_native is None else use_native
        if sp.issparse(X):
            if not (checked and X.format == "csr"):
                X = as_csr(X)
            data = X.data if X.dtype in _SUFFIX else X.data.astype(np.float64)
            indices = np.ascontiguousarray(X.indices, np.int32)
            counts = np.empty(X.shape[1], np.int32)  # at most m < 2^31 (int32 row indices)
            if use_native:
                _function("column_counts")(indices.size, counts.size, _ptr(indices), _ptr(counts))
            else:
                counts = np.bincount(indices, minlength=X.shape[1]).astype(np.int32)
            return cls(X.shape, None, np.asarray(X.indptr, np.int64), indices,
                       np.ascontiguousarray(data), counts, use_native)
        X = np.asarray(X)
        checks.check_finite(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (m, n), got shape {X.shape}")
        X = np.ascontiguousarray(X if X.dtype in _SUFFIX else X.astype(np.float64))
        return cls(X.shape, X, None, None, None, None, use_native)

    def _row_blocks(self):
        rows = max(1, BLOCK_ELEMENTS // max(1, self.shape[1]))
        for start in range(0, self.shape[0], rows):
            yield slice(start, start + rows), np.asarray(self.dense[start:start + rows],
                                                         np.float64)

    def _scipy(self) -> sp.csr_array:
        return sp.csr_array((self.data, self.indices, self.indptr), shape=self.shape)

    def matvec(self, w: Any, b: Any) -> np.ndarray:
        """``X w + b`` (m,) in float64; for W (n, K) and b (K,), ``XW + b`` (m, K), column by
        column."""
        m, n = self.shape
        if np.ndim(w) == 2:
            b = np.broadcast_to(np.asarray(b, np.float64), (np.shape(w)[1],))
            return np.stack([self.matvec(w_k, b_k) for w_k, b_k in zip(np.transpose(w), b,
                                                                        strict=True)], axis=1)
        w = _vector(w, n, "w")
        if self.dense is not None:
            z = np.empty(m)
            for rows, block in self._row_blocks():
                z[rows] = block @ w + b
            return z
        if not self.use_native:
            return self._scipy() @ w + b
        z = np.empty(m)
        _function("csr_matvec", self.data.dtype)(m, _ptr(self.indptr), _ptr(self.indices),
                                                 _ptr(self.data), _ptr(w), float(b), _ptr(z))
        return z

    def rmatvec(self, u: Any) -> np.ndarray:
        """``Xᵀ u`` (n,) in float64; for U (m, K), ``XᵀU`` (n, K), column by column."""
        m, n = self.shape
        if np.ndim(u) == 2:
            return np.stack([self.rmatvec(u_k) for u_k in np.transpose(u)], axis=1)
        u = _vector(u, m, "u")
        if self.dense is not None:
            out = np.zeros(n)
            for rows, block in self._row_blocks():
                out += u[rows] @ block
            return out
        if not self.use_native:
            return self._scipy().T @ u
        out = np.empty(n)
        _function("csr_rmatvec", self.data.dtype)(m, n, _ptr(self.indptr), _ptr(self.indices),
                                                  _ptr(self.data), _ptr(u), _ptr(out))
        return out

    def reusable(self, ws: np.ndarray | None, columns: Columns | None
                 ) -> tuple[np.ndarray, Columns] | None:
        """``(ws, columns)`` for :meth:`columns` to copy from, when they are a CSC of at most
        :data:`REUSE_SHARE` of X's entries (held while the next columns are read); else None."""
        if ws is None or columns is None or columns.colptr is None or self.indices is None:
            return None
        return (ws, columns) if columns.vals.size <= REUSE_SHARE * self.indices.size else None

    def columns(self, ws: np.ndarray, earlier: tuple[np.ndarray, Columns] | None = None
                ) -> Columns:
        """The columns ``ws`` (sorted, distinct, in [0, n)) in X's dtype. ``earlier``: an
        earlier working set of this X and its CSC columns (:meth:`reusable`); the columns they
        share are copied from it (checked first), and only the others read from X."""
        m, n = self.shape
        ws = _working_set(ws, n, "the working set")
        if self.dense is not None:
            return Columns((m, ws.size), None, None, np.asfortranarray(self.dense[:, ws]))
        if not self.use_native:
            block = self._scipy()[:, ws].tocsc()
            block.sort_indices()
            return Columns((m, ws.size), np.asarray(block.indptr, np.int64),
                           np.asarray(block.indices, np.int32), block.data)
        colptr = np.zeros(ws.size + 1, np.int64)
        np.cumsum(self.counts[ws], out=colptr[1:])
        rowind = own_pages(int(colptr[-1]), np.int32)
        vals = own_pages(int(colptr[-1]), self.data.dtype)
        source = np.full(ws.size, -1, np.int64) if earlier is None else self._sources(ws, earlier)
        read = np.flatnonzero(source < 0)  # the columns read from X
        if read.size:
            in_ws = np.zeros(n, bool)
            in_ws[ws[read]] = True
            bits = np.packbits(in_ws, bitorder="little")  # bound: C reads it
            position = np.zeros(n, np.int64)
            position[ws[read]] = read
            cursor = colptr[:-1].copy()  # each column's next free entry, advanced by C
            _function("csr_columns", self.data.dtype)(
                m, _ptr(self.indptr), _ptr(self.indices), _ptr(self.data), _ptr(bits),
                _ptr(position), _ptr(cursor), _ptr(rowind), _ptr(vals))
        if read.size < ws.size:
            old = earlier[1]
            _function("copy_columns", self.data.dtype)(
                ws.size, _ptr(source), _ptr(old.colptr), _ptr(old.rowind), _ptr(old.vals),
                _ptr(colptr), _ptr(rowind), _ptr(vals))
        return Columns((m, ws.size), colptr, rowind, vals)

    def _sources(self, ws: np.ndarray, earlier: tuple[np.ndarray, Columns]) -> np.ndarray:
        """For each column of ``ws``, its place in the earlier working set (-1: not there),
        after checking that the earlier columns are a CSC of X's columns there (ValueError)."""
        m, n = self.shape
        old_ws, old = earlier
        old_ws = _working_set(old_ws, n, "the earlier working set")
        if old.colptr is None or old.shape != (m, old_ws.size) or old.vals.dtype != self.data.dtype:
            raise ValueError(f"the earlier columns must be a CSC of shape ({m}, {old_ws.size}) "
                             f"in {self.data.dtype}, got shape {old.shape}")
        old.check()
        at = np.minimum(np.searchsorted(old_ws, ws), max(old_ws.size - 1, 0))
        shared = old_ws[at] == ws if old_ws.size else np.zeros(ws.size, bool)
        if not np.array_equal(np.diff(old.colptr)[at[shared]], self.counts[ws[shared]]):
            raise ValueError("the earlier columns hold other entry counts than X's columns")
        return np.where(shared, at, -1)


def _working_set(ws: Any, n: int, name: str) -> np.ndarray:
    """``ws`` as int64 when it holds sorted distinct columns in [0, n), else ValueError."""
    ws = np.asarray(ws, np.int64)
    if ws.ndim != 1 or (ws.size and (ws[0] < 0 or ws[-1] >= n or np.any(np.diff(ws) <= 0))):
        raise ValueError(f"{name} must be sorted distinct columns in [0, {n})")
    return ws


def solve_subproblem(columns: Columns, y: np.ndarray, s: np.ndarray, l1: float, l2: float,
                     fit_intercept: bool, v: np.ndarray, z: np.ndarray, tol: float,
                     settings: NewtonSettings) -> int:
    """Proximal Newton on the columns (``native_cd.c``) for ``J = Σ s_i L_i + l1 ||w||₁ +
    l2/2 ||w||²`` until the KKT violation is at most ``tol``: v (k + 1,) (w, then the
    intercept) and z (m,), the logits at v, are updated in place (float64, contiguous).
    Returns the Newton steps. ValueError before any native code runs for an array C should not
    read."""
    (m, k) = columns.shape
    columns.check()
    for a, length, name in ((y, m, "y"), (s, m, "s"), (z, m, "z"), (v, k + 1, "v")):
        _checked(a, np.float64, length, name)
    K = settings.anderson
    if not 0 <= K <= MAX_ANDERSON:
        raise ValueError(f"settings.anderson must be in [0, {MAX_ANDERSON}], got {K}")
    rows = 2 + max(K - 1, 0)  # of m: D, r, r's iterates; in C, (k + 1) of them int64
    work = own_pages(rows * m + (6 + K) * (k + 1) + K * K, np.float64)
    return int(_function("solve", columns.vals.dtype)(
        m, k, _ptr(columns.colptr), _ptr(columns.rowind), _ptr(columns.vals), _ptr(y), _ptr(s),
        float(l1), float(l2), int(fit_intercept), float(tol), *settings[:2],
        *map(float, settings[2:6]), *settings[6:], _ptr(v), _ptr(z), _ptr(work)))


def gap_dual_point(z: Any, y: Any, s: Any, steps: int
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """The binary dual point at logits z (m,) in C (``native_gap.c``): ``p = σ(z + δ)``, ``u =
    s (y - p)`` and ``Σ s softplus((1 - 2y) z)``, δ the intercept shift by at most ``steps``
    Newton steps (0: none). y (m,) in {0, 1} and s (m,) are read as float64; ValueError naming
    the argument whose length is not m."""
    z = _vector(z, None, "z")
    m = z.shape[0]
    y, s = _vector(y, m, "y"), _vector(s, m, "s")
    p, u, out = np.empty(m), np.empty(m), np.empty(2)
    _function("gap_dual_point")(m, _ptr(z), _ptr(y), _ptr(s), max(int(steps), 0), _ptr(p),
                                _ptr(u), _ptr(out))
    return p, u, float(out[0])


def gap_bound(y: Any, s: Any, p: Any, w: Any, v: Any, loss: float, l1: float, l2: float
              ) -> tuple[float, float]:
    """(J, gap) of the binary duality gap in C (``native_gap.c``) from a dual point (p (m,),
    ``v = Xᵀ s(y - p)`` (n,), loss) and w (n,); arrays read as float64, ValueError naming the
    argument whose length differs from p's (m) or w's (n)."""
    p, w = _vector(p, None, "p"), _vector(w, None, "w")
    (m,), (n,) = p.shape, w.shape
    y, s, v = _vector(y, m, "y"), _vector(s, m, "s"), _vector(v, n, "v")
    out = np.empty(2)
    _function("gap_bound")(m, n, _ptr(y), _ptr(s), _ptr(p), _ptr(w), _ptr(v), float(loss),
                           float(l1), float(l2), _ptr(out))
    return float(out[0]), float(out[1])


__all__ = ["Columns", "HostX", "NewtonSettings", "gap_bound", "gap_dual_point",
           "solve_subproblem"]
