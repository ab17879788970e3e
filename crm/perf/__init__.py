"""Development tooling: large data and benchmarks. The running site never imports it."""
