"""The TARS framework services as servants: config (``tars.tarsconfig.ConfigObj``) now; notify, stat, property and
log later. Each reads the cluster through ``k8stars.kube`` and never imports the operator."""
