"""Test helpers shared by the suites: cluster access, waiting, the operator process."""
