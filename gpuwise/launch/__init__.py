"""``gpuwise launch``: the run ``gpuwise plan`` chose, as a job for Slurm, SkyPilot or Kubernetes.

``job`` turns the plan's option into a ``Job`` (pure, checked); ``slurm``, ``skypilot`` and
``kubernetes`` render it as the scheduler's file; ``submit`` hands the file to the scheduler.
"""
