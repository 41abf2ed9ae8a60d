"""Lab 04: GPU scheduling and a Gateway API / Istio canary with progressive rollout."""
from . import ImagePlan, Lab

VISION_SRC = "solutions/04-gpu-canary/vision"
VISION_V1 = "mlops-labs/vision:v1"   # EfficientNet-Lite0, the stable release
VISION_V2 = "mlops-labs/vision:v2"   # EfficientNet-Lite2, the canary

LAB = Lab(4, "04-gpu-canary", "GPU scheduling and a canary release", context="cluster",
          checks="harness.checks.lab04",
          images=(ImagePlan(VISION_V1, "ref", src=VISION_SRC, models="vision-v*"), ImagePlan(VISION_V2, "v2")),
          # kind installs what the lab needs on top of the cluster: it routes through a Gateway
          kind_options={"addons": ("metrics-server", "gateway-api")})
