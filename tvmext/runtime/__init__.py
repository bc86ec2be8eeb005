"""A compiled model at run time: :class:`~tvmext.runtime.module.Module` (run, benchmark,
profile, export, load), zero-copy inputs, thread-pool sizing."""
