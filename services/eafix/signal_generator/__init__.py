"""signal-generator (8083): configured strategies over indicator vectors -> Signal / SignalSuppressed.

`config` loads and validates the strategies YAML (default: `strategies.default.yaml` in this
package), `strategies` evaluates them, `domain.SignalEngine` applies the gates (risk-off latch,
calendar blackout hook, neutral bias, confidence, duplicate window), `stage` is the bus handler,
`app` serves the HTTP API and `service` wires the process.
"""
