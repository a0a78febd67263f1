"""The worker: the RQ job and the processes and threads that run it."""
