"""Lab 03: HPA under real load, zero-downtime rollouts, rollback."""
from . import ImagePlan, Lab
from .lab02 import IMAGE_V1

IMAGE_V2 = "mlops-labs/sentiment:v2"          # the same server serving the v2 model
IMAGE_V3_BROKEN = "mlops-labs/sentiment:v3"   # asks for a model that does not exist: never ready

LAB = Lab(3, "03-autoscaling", "HPA and zero-downtime rolling updates", context="cluster",
          checks="harness.checks.lab03",
          images=(ImagePlan(IMAGE_V1, "ref"), ImagePlan(IMAGE_V2, "v2"), ImagePlan(IMAGE_V3_BROKEN, "v3")),
          # Shorter controller periods on sim keep the HPA cycle within grading
          # time; they are announced in the report. kind uses the real ones.
          sim_options={"metrics_resolution": 5.0, "hpa_sync_period": 5.0})
