"""Lab 02: Deployment, Service, probes, ConfigMap and Secret."""
from . import ImagePlan, Lab

IMAGE_V1 = "mlops-labs/sentiment:v1"   # the Lab 01 reference server

LAB = Lab(2, "02-k8s-basics", "Deployment, Service and probes", context="cluster",
          checks="harness.checks.lab02",
          images=(ImagePlan(IMAGE_V1, "ref"),))
