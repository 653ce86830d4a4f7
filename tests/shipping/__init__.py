"""What ships: the Helm chart, the container image, the KEDA example."""
