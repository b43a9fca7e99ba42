"""tarscli: the agent inside every TARS pod (genconf, supervisor, hzcheck, prestop, notify)."""
