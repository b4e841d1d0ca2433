"""Domain logic: pure decisions with no I/O."""
