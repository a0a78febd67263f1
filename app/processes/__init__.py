"""Starting, watching and stopping the app's own processes (local runs, tests, benchmarks)."""
