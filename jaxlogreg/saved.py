"""The training programs (the loop on dense and on sparse X, the cross-validation path) saved
on disk lowered (``jax.export``), so that a new process skips tracing and lowering them.

JAX's persistent compilation cache (:mod:`jaxlogreg.cache`) keeps compiled programs, but it is
looked up by the lowered program: every new process first traces the loop in Python (about 600
operations, 0.1–0.2 s) and lowers it to StableHLO (0.07–0.1 s), which is most of a first fit
once the compiled program is cached. A :class:`SavedProgram` exports the program once
(``jax.export``), writes it to ``<compilation cache folder>/jaxlogreg-exported/<key>`` (a
FlatBuffer of StableHLO bytecode: reading it runs no code) and, in a later process, reads it
back in a few milliseconds and calls it. JAX then lowers only the call, and the persistent
cache supplies the compiled program: a first ``LogisticRegression().fit`` with a warm cache
took 0.23–0.29 s instead of 0.42–0.57 s when this came in (10^4 x 50, 2-core AMD EPYC, fresh
processes in turn), and 0.20–0.22 s in the latest ``benchmarks/results/time_to_solution.md``.

The key holds everything that decides the traced program: the function's name, its static
arguments, the structure, shapes, dtypes and weak types of the others, the package's source
(a hash of its ``.py`` files), the versions of jax, jaxlib and optax, the platform of the
arguments' device, x64, the default matmul precision and the XLA options. A file that cannot
be read, or that holds another program, is traced and written again.

The usual ``jax.jit`` runs the program instead when the compilation cache is off
(``JAXLOGREG_NO_CACHE=1``), when ``flatbuffers`` (which ``jax.export`` serialises with) is
missing, when the arguments live on a backend other than the default one or on several
devices (sharded data), when the caller says the call is not eligible (the Pallas GPU
kernel), or when the program cannot be exported or compiled this way (``jax.jit`` then raises
its error, if the program has one).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jaxlib
import optax

from jaxlogreg import cache, compiler

FOLDER_NAME = "jaxlogreg-exported"  # inside the compilation cache folder
_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def package_fingerprint() -> str:
    """A hash of the package's sources (Python, and the C kernel's): a saved program is never
    used by other code."""
    digest = hashlib.sha256()
    for path in sorted([*_PACKAGE.rglob("*.py"), *_PACKAGE.rglob("*.c")]):
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _can_serialize() -> bool:
    try:
        import flatbuffers  # noqa: F401  (jax.export serialises with it)
    except ImportError:
        return False
    return True


def program_key(name: str, static: Any, treedef: Any, leaves: list[Any], platform: str) -> str:
    """The file name of a program: a hash of everything that decides its traced form."""
    avals = [(a.shape, str(a.dtype), a.weak_type) for a in map(jax.typeof, leaves)]
    parts = (name, repr(static), str(treedef), avals, package_fingerprint(), jax.__version__,
             jaxlib.__version__, optax.__version__, platform,
             jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision,
             sorted(compiler.XLA_OPTIONS.items()), compiler.Jitted.options_known)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class SavedProgram:
    """``fun(*args, **static)``, traced once per key across processes (see the module docstring).

    Args:
      fun: the function; its static arguments are passed by keyword.
      name: the prefix of its saved files.
      fallback: ``fun`` jitted as usual (:func:`jaxlogreg.compiler.jit`), called when the saved
        route is off or ``eligible`` says no.
      out_structure: the pytree structure of ``fun``'s output from its positional arguments
        (a saved program returns a flat list of arrays).
      donate_argnums: positional arguments whose buffers the call may reuse.
      eligible: ``eligible(**static)``: whether this call may take the saved route.
      custom_calls: targets of XLA custom calls the program may make (``jax.export`` refuses
        others); the process that reads the program back must have registered them.

    The saved program is compiled with the options ``fallback`` would use for the call
    (:class:`jaxlogreg.compiler.Jitted`), else with XLA's defaults, as ``fallback`` is.
    """

    def __init__(self, fun: Callable[..., Any], name: str, fallback: Callable[..., Any], *,
                 out_structure: Callable[..., Any], donate_argnums: tuple[int, ...] = (),
                 eligible: Callable[..., bool] = lambda **static: True,
                 custom_calls: tuple[str, ...] = ()):
        self._fun, self.name, self.fallback = fun, name, fallback
        self._out_structure, self._donate, self._eligible = out_structure, donate_argnums, eligible
        self._allowed_calls = [jax.export.DisabledSafetyCheck.custom_call(target)
                               for target in custom_calls]
        # (key, compiled with QUICK_OPTIONS) -> the compiled call (or fallback), in this process
        self._compiled: dict[tuple[str, bool], Any] = {}
        self.__doc__ = fun.__doc__

    def __call__(self, *args: Any, **static: Any) -> Any:
        folder = cache.folder()
        leaves, treedef = jax.tree.flatten(args)
        platform = compiler.platform(leaves)
        if (folder is None or not self._eligible(**static) or not _can_serialize()
                or platform != jax.default_backend()  # jax.export lowers for the default one
                or any(_on_several_devices(leaf) for leaf in leaves)):
            return self.fallback(*args, **static)
        key = program_key(self.name, sorted(static.items()), treedef, leaves, platform)
        quick = isinstance(self.fallback, compiler.Jitted) and self.fallback.quick(*args, **static)
        compiled = self._compiled.get((key, quick))
        if compiled is None:
            path = folder / FOLDER_NAME / f"{self.name}-{key}"
            try:
                compiled = self._read(path, args, leaves, quick) or self._save(
                    path, treedef, leaves, static, args, quick)
            except Exception:  # noqa: BLE001 -- not exportable: jit it (the same error if any)
                compiled = self.fallback
            self._compiled[(key, quick)] = compiled
        if compiled is self.fallback:
            return self.fallback(*args, **static)
        return jax.tree.unflatten(self._out_structure(*args), compiled(*leaves))

    def _cache_size(self) -> int:
        """Programs compiled by this process, by either route (as ``jax.jit``'s)."""
        saved = sum(compiled is not self.fallback for compiled in self._compiled.values())
        return saved + self.fallback._cache_size()

    def __getattr__(self, name: str) -> Any:  # lower, trace, ...: the jitted function's
        return getattr(self.fallback, name)

    def _read(self, path: Path, args: tuple, leaves: list[Any], quick: bool) -> Any:
        """The saved program at ``path`` compiled, or None when it is absent or unusable."""
        try:
            exported = jax.export.deserialize(bytearray(path.read_bytes()))
            return self._compile(exported, args, leaves, quick)
        except Exception:  # noqa: BLE001 -- absent, or corrupt in one of many ways: traced again
            return None

    def _save(self, path: Path, treedef: Any, leaves: list[Any], static: dict, args: tuple,
              quick: bool) -> Any:
        """Export ``fun`` for these arguments, write it to ``path`` and compile it (nothing is
        written if it cannot be exported or compiled)."""

        def flat(*flat_args):
            return jax.tree.leaves(self._fun(*jax.tree.unflatten(treedef, flat_args), **static))

        flat.__name__ = f"{self._fun.__name__}_for_export"  # as jax.log_compiles names it

        specs = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)
                 for a in map(jax.typeof, leaves)]
        exported = jax.export.export(jax.jit(flat), disabled_checks=self._allowed_calls)(*specs)
        compiled = self._compile(exported, args, leaves, quick)
        try:
            _write_atomically(path, exported.serialize())
        except OSError:  # a read-only cache folder: the program is still used in this process
            pass
        return compiled

    def _compile(self, exported: Any, args: tuple, leaves: list[Any], quick: bool) -> Any:
        counts = [len(jax.tree.leaves(a)) for a in args]  # leaves of each positional argument
        starts = [sum(counts[:i]) for i in range(len(args))]
        donate = tuple(j for i in self._donate for j in range(starts[i], starts[i] + counts[i]))

        def call(*flat_args):
            return exported.call(*flat_args)

        call.__name__ = self._fun.__name__  # JAX names the program, and its cache file, after it

        def build(options: dict[str, Any] | None) -> Any:
            jitted = jax.jit(call, donate_argnums=donate, compiler_options=options)
            return jitted.lower(*leaves).compile()

        if isinstance(self.fallback, compiler.Jitted):
            return compiler.with_options(build, quick)
        return build(None)


def _on_several_devices(leaf: Any) -> bool:
    """Whether ``leaf`` is a JAX array sharded or replicated over more than one device."""
    return isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) > 1


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
