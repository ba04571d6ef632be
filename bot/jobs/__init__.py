"""Running jobs: the runner, the fair provider queue, polling, the circuit breaker."""
