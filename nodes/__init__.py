"""One virtual node: a SaladCloud project seen by Kubernetes as a Node."""
