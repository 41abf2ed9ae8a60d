"""Lab 05: a Helm chart with dev/prod values, autoscaling on requests in flight, blue/green.

The chart is linted and rendered through Helm's engine (dev, prod, prod switched).
The live part installs prod's rendered objects on the cluster, puts Lab 03's CPU
HPA and the learner's custom-metric HPA through the same I/O-bound load, and
switches ``activeColor`` under traffic and back.
"""
from . import ImagePlan, Lab
from .lab02 import IMAGE_V1
from .lab03 import IMAGE_V2

LAB = Lab(5, "05-helm-autoscaling", "Helm, custom-metric autoscaling and blue/green", context="cluster",
          checks="harness.checks.lab05", manifests_from="chart",
          images=(ImagePlan(IMAGE_V1, "ref"), ImagePlan(IMAGE_V2, "v2")),
          # the sim scrapes pods with a real Prometheus every second and syncs HPAs every 5 s
          sim_options={"custom_metrics": True, "scrape_interval": 1.0, "hpa_sync_period": 5.0,
                       "metrics_resolution": 5.0},
          # kind: Prometheus + prometheus-adapter (harness/cluster/kind/addons.py, custom-metrics)
          kind_options={"addons": ("metrics-server", "custom-metrics")})
