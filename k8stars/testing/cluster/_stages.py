"""kwok Stage documents: how fake nodes and their pods move through their lifecycles.

Our own stages instead of kwok's bundled ones, for two reasons:
- readiness gates behave as with a real kubelet: the pod is Ready only while every gate's
  condition is True, and nobody but the test (or the operator under test) sets a gate. kwok's
  bundled pod-ready stage sets every gate True itself, which would hide operator bugs.
- they live in this package, so starting a cluster needs no Go module cache.

Only Stage documents belong here: a KwokConfiguration document in the same file would replace
kwok's built-in defaults (every setting is passed on the command line instead).
Templates are Go text/template evaluated by kwok against the object; selectors are jq.
"""

from __future__ import annotations

_NODE_READY = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: k8stars-node-ready
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select(.type == "Ready") | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      {{ if not .status.addresses }}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      - {type: Hostname, address: {{ NodeName | Quote }}}
      {{ end }}
      {{ if not .status.allocatable }}
      allocatable: {cpu: "32", memory: 64Gi, pods: "110"}
      capacity: {cpu: "32", memory: 64Gi, pods: "110"}
      {{ end }}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
"""

# Liveness itself comes from kwok renewing each node's Lease; this only keeps the conditions'
# heartbeat times from looking frozen to anyone who reads them.
_NODE_HEARTBEAT = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: k8stars-node-heartbeat
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.status.conditions.[] | select(.type == "Ready") | .status'
      operator: In
      values: ["True"]
  delay:
    durationMilliseconds: 60000
    jitterDurationMilliseconds: 75000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range .status.conditions }}
      - type: {{ .type | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
      {{ end }}
"""

_POD_RUNNING = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: k8stars-pod-running
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Pending]
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $gated := .spec.readinessGates }}
      phase: Running
      startTime: {{ $now | Quote }}
      conditions:
      - {type: PodReadyToStartContainers, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ if $gated }}
      - {type: Ready, status: "False", reason: ReadinessGatesNotReady, lastTransitionTime: {{ $now | Quote }}}
      {{ else }}
      - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ $now | Quote }}}}
      {{ end }}
      {{ with .spec.initContainers }}
      initContainerStatuses:
      {{ range . }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        restartCount: 0
        {{ if eq (or .restartPolicy "") "Always" }}
        ready: true
        started: true
        state: {running: {startedAt: {{ $now | Quote }}}}
        {{ else }}
        ready: false
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $host := or .spec.hostNetwork false }}
      {{ $uid := or .metadata.uid "" }}
      {{ with PodIPsWith .spec.nodeName $host $uid (or .metadata.name "") (or .metadata.namespace "") }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
"""

# Gate conditions that are not True, counted as a string (kwok compares strings).
_UNMET_GATES = (
    "'[.spec.readinessGates[]?.conditionType] - "
    '[.status.conditions[]? | select(.status == "True") | .type] | length | tostring\''
)


def _gate_stage(name: str, ready_now: str, unmet_op: str, patch: str) -> str:
    """A stage flipping Ready of a Running pod with readiness gates, as the kubelet would."""
    return f"""\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: {name}
spec:
  resourceRef: {{apiGroup: v1, kind: Pod}}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.spec.readinessGates | length | tostring'
      operator: NotIn
      values: ["0"]
    - key: '.status.conditions.[] | select(.type == "Ready") | .status'
      operator: In
      values: ["{ready_now}"]
    - key: {_UNMET_GATES}
      operator: {unmet_op}
      values: ["0"]
  next:
    statusTemplate: |
      conditions:
      - {patch}
"""


_POD_GATES_MET = _gate_stage(
    "k8stars-pod-gates-met",
    ready_now="False",
    unmet_op="In",
    patch='{type: Ready, status: "True", reason: "", lastTransitionTime: {{ Now | Quote }}}',
)
_POD_GATES_UNMET = _gate_stage(
    "k8stars-pod-gates-unmet",
    ready_now="True",
    unmet_op="NotIn",
    patch=('{type: Ready, status: "False", reason: ReadinessGatesNotReady, lastTransitionTime: {{ Now | Quote }}}'),
)

# Pods owned by a Job finish successfully right away, so Jobs complete.
_POD_JOB_DONE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: k8stars-pod-job-done
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.metadata.ownerReferences.[].kind'
      operator: In
      values: [Job]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Succeeded
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
"""

# No stage ends a graceful deletion: kwok would delete by name alone (podreaper.py deletes by uid).
STAGES = "---\n".join([_NODE_READY, _NODE_HEARTBEAT, _POD_RUNNING, _POD_GATES_MET, _POD_GATES_UNMET, _POD_JOB_DONE])
