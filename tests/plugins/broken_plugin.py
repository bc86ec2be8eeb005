"""A plugin file that fails while loading."""

raise RuntimeError("the vendor library is missing")
