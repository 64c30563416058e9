//! Benchmark: placeholder replaced below.
