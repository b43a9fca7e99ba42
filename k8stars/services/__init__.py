"""The TARS framework services as servants: config (``tars.tarsconfig.ConfigObj``), stat and property
(``tars.tarsstat.StatObj``, ``tars.tarsproperty.PropertyObj``), notify (``tars.tarsnotify.NotifyObj``); log later.
Each reads the cluster through ``k8stars.kube`` and never imports the operator."""
