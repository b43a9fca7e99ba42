"""The TARS naming service (QueryF) with K8STARS registration, over pluggable stores."""
