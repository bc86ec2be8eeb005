"""From Relax to a VM executable: the lowering pipeline, schedules and tuning.

``pipeline`` lists the lowering stages; ``schedules`` gives every PrimFunc a schedule
(the op's own, tuned, dlight or the default rules, each checked by ``schedules.limits``);
``verification`` runs scheduled kernels against their naive loops; ``tuning`` searches
the parameters of tvmext's matmul schedule.
"""
