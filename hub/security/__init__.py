"""Guards to put in front of applications: ``hub.security.websocket`` checks Origin."""
