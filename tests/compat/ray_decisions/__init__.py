"""Ray Tune 2.60 and poptune side by side, in one process, on identical inputs.

Each test builds Ray's scheduler or searcher and poptune's with the same arguments, feeds both
the same hand-made trials and results, and asserts that they decide the same. Where poptune
differs on purpose (a README "Differences" row or a module docstring says so), the test
asserts that documented difference (Ray does X, poptune does Y), so a change on either side
is noticed. Ray is only imported: no cluster is started (no ``ray.init``). The files skip
when Ray (or an optional searcher library) is not installed.

Shared trial builders, the stand-in for Ray's controller and the K-slot simulator are in
``_ray.py``.
"""
