"""The backend in a worker process: the wire protocol (``wire``), the supervisor, the Python worker."""
