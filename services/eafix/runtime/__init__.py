"""Runtime shared by every service: settings, logging, HTTP app factory, health, metrics."""
