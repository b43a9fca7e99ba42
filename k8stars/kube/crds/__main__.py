"""python -m k8stars.kube.crds write|check [DIR]"""

import sys

from .files import main

sys.exit(main(sys.argv[1:]))
