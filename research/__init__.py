"""Research toolkit: evaluations, attacks, benchmarks and reports."""
