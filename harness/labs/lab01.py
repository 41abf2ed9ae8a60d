"""Lab 01: containerize a sentiment model (graded on the Docker engine)."""
from . import Lab

LAB = Lab(1, "01-docker", "Containerize a sentiment model", context="docker",
          checks="harness.checks.lab01")
