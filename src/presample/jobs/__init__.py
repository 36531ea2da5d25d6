"""Jobs: a file of requests answered in an output file, resumably, in one
process or on a Ray cluster (``presample run``)."""

from .files import JsonlOutput, ParquetOutput, open_output, read_requests
from .job import Job, JobRun, run_local

__all__ = ["Job", "JobRun", "JsonlOutput", "ParquetOutput", "open_output", "read_requests",
           "run_local"]  # fmt: skip
