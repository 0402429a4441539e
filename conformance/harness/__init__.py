"""Judging, nothing else: the session that drives a run, the runner that builds calls and
evaluates checks, the comparison and tolerance policy, the batched comparison, and the
expectation files. It never knows a loss's formula."""
