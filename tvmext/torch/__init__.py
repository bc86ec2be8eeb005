"""PyTorch's side of tvmext (the ``tvmext[torch]`` extra).

``import tvmext.torch`` makes every tvmext op a PyTorch custom op: the shipped ones,
the installed plugins', and every op declared afterwards (``@tvmext.op``,
``tvmext.native_op``). ``mylib.scaled_tanh`` is ``torch.ops.mylib.scaled_tanh``; it
runs in eager mode, under autograd, ``torch.compile`` and ``torch.export``, and a
program that calls it imports as the Relax op (:mod:`tvmext.torch.library`).

Models come in through ``tvmext.compile(module_or_exported_program, ...)``
(:mod:`tvmext.torch.program`); ``torch.compile(model, backend="tvmext")`` is
:mod:`tvmext.torch.dynamo_backend`. ``import tvmext`` alone never imports PyTorch.
"""

from __future__ import annotations

from tvmext.opdef.declaration import OPS
from tvmext.plugins import load_plugins
from tvmext.torch.library import register

load_plugins()  # the shipped ops and the installed plugins' (idempotent)
for _entry in OPS:
    register(_entry.value)
OPS.subscribe(lambda entry: register(entry.value))
del _entry
