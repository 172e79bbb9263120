"""Helpers shared by tests and benchmarks (not tests themselves): tiny configs, scripted HTTP servers."""
