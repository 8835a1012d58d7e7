"""How programs are compiled and cached: XLA options and the quick compile
(:mod:`~.compiler`), the opt-in persistent compilation cache (:mod:`~.cache`), and the
package's environment settings (:mod:`~.env`). The lowest layer: it imports no other part of
jaxlogreg."""
