"""Whole-model tuning with MetaSchedule, on this machine or on RPC servers.

``tasks`` picks the PrimFuncs of a fused model that tuning can improve; ``session``
runs MetaSchedule on them in a child process (``worker``) and keeps its database in a
records file (:mod:`tvmext.lowering.tuning_records`); ``rpc`` talks to a TVM RPC
tracker (servers, their CPU, deadlines); ``rpc_server`` is the server that
``tvmext rpc-server`` runs.
"""
