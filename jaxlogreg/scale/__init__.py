"""Scale: data-parallel sharding over devices (:mod:`~.sharding`), several processes or hosts
(:mod:`~.distributed`), data larger than memory (:mod:`~.streaming`, reading rows from disk
with :mod:`~.rows`) and checkpoints
(:mod:`~.checkpoint`). Each prepares data for the one fit pipeline of :mod:`jaxlogreg.training`."""
