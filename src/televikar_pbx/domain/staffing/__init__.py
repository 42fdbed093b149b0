"""Staffing maths (issue 17, docs/staffing.md): what past calls say per hour of the week
(:mod:`.measure`, :mod:`.patience`, gathered per customer by :mod:`.profile`), the
Erlang A queue (:mod:`.erlang_a`), the plan built from both (:mod:`.plan`) and the check
of the model against past hours (:mod:`.backtest`). Pure: no clock, no I/O; time zones
and instants are arguments.
"""
