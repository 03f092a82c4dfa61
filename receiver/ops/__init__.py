"""What operators watch: health and readiness endpoints, Prometheus metrics, structured logs."""
