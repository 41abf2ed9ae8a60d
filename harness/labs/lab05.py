"""Lab 05: a Helm chart with dev/prod values, autoscaling on requests in flight, blue/green.

Graded today from the chart alone, through Helm's engine (lint and render). Not
yet listed as available: the live part (the chart installed on a cluster, the
custom-metric HPA against Lab 03's CPU HPA under real load, the blue/green
switch under traffic) is still to come, and ``make lab-5`` says so.
"""
from . import Lab

LAB = Lab(5, "05-helm-autoscaling", "Helm, custom-metric autoscaling and blue/green", context="files",
          available=False, checks="harness.checks.lab05")
