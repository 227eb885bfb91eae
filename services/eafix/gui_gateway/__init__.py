"""gui-gateway: the one authenticated door (OIDC bearer JWTs and API keys, roles viewer/trader/admin),
emergency trading controls, the operator audit, system status and read proxies to the peers."""
