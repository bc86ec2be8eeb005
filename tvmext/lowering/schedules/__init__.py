"""Schedules tvmext applies to PrimFuncs that have none of their own, and the helpers
that ops' own schedules are written with."""
