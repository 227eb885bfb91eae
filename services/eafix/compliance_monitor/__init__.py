"""compliance-monitor: Alertmanager webhook -> regulation policy -> actions through gui-gateway, audited."""
