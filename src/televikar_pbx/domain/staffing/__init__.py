"""Staffing maths (issue 17, docs/staffing.md): what past calls say per hour of the week
(:mod:`.measure`, :mod:`.patience`), the Erlang A queue (:mod:`.erlang_a`) and the plan
built from both (:mod:`.plan`). Pure: no clock, no I/O; time zones and instants are
arguments.
"""
