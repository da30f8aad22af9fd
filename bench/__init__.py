"""agenthost's benchmarks, each run by its own ``make`` target (see ``docs/performance.md``)."""
