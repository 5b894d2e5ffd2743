#!/usr/bin/env python3
"""Renders every overlay under k8s/overlays with kustomize and checks the result.

  k8s/validate.py [--kustomize PATH]

Rendering is real kustomize: a `kustomize` binary (ops/setup.sh puts the
release binary in ~/.cache/triage/kustomize when neither it nor kubectl is on
PATH), or `kubectl kustomize`.

Every rendered object of a Kubernetes API kind is validated, strictly (unknown
fields are errors), against the OpenAPI-derived JSON schemas of Kubernetes
1.28 and 1.37 that the PyPI package kubernetes-validate carries offline
(ops/setup.sh installs it into ~/.cache/triage/k8s-venv). KEDA's
ScaledObject has no schema there; the project's checks below cover it.
The checks below are this project's, in Python with PyYAML:

- the ConfigMap carries topology/default.yaml unchanged (k8s/base/topology.yaml is a copy);
- names carry the overlay's suffix; every ConfigMap, Service and ServiceAccount
  the StatefulSet names exists; selectors of the StatefulSet, Service and PDB
  match the pod template's labels; $(VARS) in the arguments are defined;
- terminationGracePeriodSeconds exceeds worker.shutdown_timeout_ms by >= 5 s;
- /healthz liveness and /readyz readiness probes on the metrics port, which
  --metrics-listen binds on all addresses;
- non-root, read-only root filesystem, no privilege escalation, capabilities
  dropped, and every path the worker writes (working directory, /tmp) mounted;
- KEDA ScaledObject: kafka trigger on topics.tickets for worker.group_id,
  targets the StatefulSet, 1 <= min <= max <= topics.partitions, idle consumers off;
- the hardware class's device resource, node selector and toleration.
--self-test also breaks rendered manifests on purpose and expects each check to notice.
"""
import argparse
import copy
import glob
import os
import re
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("TRIAGE_CACHE", os.path.expanduser("~/.cache/triage"))

DEVICE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "intel": "gpu.intel.com/i915", "cpu": None}


def find_renderer(explicit):
    if explicit:
        return [explicit, "build"] if os.path.basename(explicit).startswith("kustomize") else [explicit, "kustomize"]
    for k in (shutil.which("kustomize"), os.path.join(CACHE, "kustomize", "kustomize")):
        if k and os.access(k, os.X_OK):
            return [k, "build"]
    k = shutil.which("kubectl")
    if k:
        return [k, "kustomize"]
    sys.exit("k8s/validate.py: neither kustomize nor kubectl found: run ops/setup.sh "
             "(it fetches the kustomize binary into ~/.cache/triage/kustomize)")


SCHEMA_VERSIONS = ("1.28.0", "1.37.0")
NO_SCHEMA_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}


def load_schema_validator():
    """kubernetes_validate from the project's venv (or this interpreter)."""
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        for site in glob.glob(os.path.join(CACHE, "k8s-venv", "lib", "python3*", "site-packages")):
            sys.path.insert(0, site)
        try:
            import kubernetes_validate  # noqa: F401
        except ImportError:
            sys.exit("k8s/validate.py: the Kubernetes API schemas (PyPI kubernetes-validate) are not "
                     "installed: run ops/setup.sh (it installs them into ~/.cache/triage/k8s-venv)")
    import kubernetes_validate
    return kubernetes_validate


def check_schemas(kv, docs, cls):
    """Strict schema validation of every object against each Kubernetes version."""
    errs = []
    for d in docs:
        if (d.get("apiVersion"), d.get("kind")) in NO_SCHEMA_KINDS:
            continue
        where = f"{cls}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        for version in SCHEMA_VERSIONS:
            try:
                kv.validate(d, version, strict=True)
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errs.append(f"{where}: Kubernetes {version} schema: {path}: {e.message}")
            except kv.SchemaNotFoundError:
                errs.append(f"{where}: no Kubernetes {version} schema for {d.get('apiVersion')} {d.get('kind')}")
    return errs


def render(renderer, overlay):
    r = subprocess.run(renderer + [overlay], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"k8s/validate.py: {' '.join(renderer)} {overlay} failed:\n{r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def subset(small, big):
    return all(big.get(k) == v for k, v in (small or {}).items())


def check(docs, cls, topology_text):
    """Returns a list of problems, each naming the object and field."""
    errs = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("StatefulSet", "Service", "PodDisruptionBudget", "ScaledObject", "ServiceAccount"):
        if len(by_kind.get(kind, [])) != 1:
            errs.append(f"{cls}: expected one {kind}, found {len(by_kind.get(kind, []))}")
    if errs:
        return errs
    for d in docs:
        name = d["metadata"]["name"]
        if not re.search(rf"-{cls}(-[a-z0-9]+)?$", name):
            errs.append(f"{cls}: {d['kind']} {name}: name lacks the -{cls} suffix")
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    sts = by_kind["StatefulSet"][0]
    svc = by_kind["Service"][0]
    pdb = by_kind["PodDisruptionBudget"][0]
    so = by_kind["ScaledObject"][0]
    sa = by_kind["ServiceAccount"][0]
    where = f"{cls}: StatefulSet {sts['metadata']['name']}"
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})

    # Configuration.
    config_cm = None
    for v in pod.get("volumes", []):
        if "configMap" in v:
            ref = v["configMap"]["name"]
            if ref not in cms:
                errs.append(f"{where}: volume {v['name']} names ConfigMap {ref}, which is not rendered")
            elif "default.yaml" in cms[ref].get("data", {}):
                config_cm = cms[ref]
    if config_cm is None:
        errs.append(f"{where}: no ConfigMap volume carries default.yaml")
        cfg = {}
    else:
        if config_cm["data"]["default.yaml"] != topology_text:
            errs.append(f"{cls}: ConfigMap {config_cm['metadata']['name']}: default.yaml differs from "
                        "topology/default.yaml (cp topology/default.yaml k8s/base/topology.yaml)")
        cfg = yaml.safe_load(config_cm["data"]["default.yaml"])
    worker = cfg.get("worker", {})
    topics = cfg.get("topics", {})
    shutdown_ms = int(worker.get("shutdown_timeout_ms", 10000))
    partitions = int(topics.get("partitions", 6))

    # Selectors and references.
    if not subset(spec["selector"].get("matchLabels"), labels):
        errs.append(f"{where}: spec.selector does not match the pod template's labels")
    if spec.get("serviceName") != svc["metadata"]["name"]:
        errs.append(f"{where}: serviceName {spec.get('serviceName')} is not the Service {svc['metadata']['name']}")
    if svc["spec"].get("clusterIP") != "None":
        errs.append(f"{cls}: Service {svc['metadata']['name']}: a StatefulSet's governing service must be headless")
    if not svc["spec"].get("selector") or not subset(svc["spec"]["selector"], labels):
        errs.append(f"{cls}: Service {svc['metadata']['name']}: selector does not select the workers")
    if not subset(pdb["spec"]["selector"].get("matchLabels"), labels) or not pdb["spec"]["selector"].get("matchLabels"):
        errs.append(f"{cls}: PodDisruptionBudget {pdb['metadata']['name']}: selector does not select the workers")
    if "minAvailable" not in pdb["spec"] and "maxUnavailable" not in pdb["spec"]:
        errs.append(f"{cls}: PodDisruptionBudget: neither minAvailable nor maxUnavailable")
    if pod.get("serviceAccountName") != sa["metadata"]["name"]:
        errs.append(f"{where}: serviceAccountName {pod.get('serviceAccountName')} is not rendered")

    # Shutdown bound.
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace * 1000 < shutdown_ms + 5000:
        errs.append(f"{where}: terminationGracePeriodSeconds {grace} must exceed worker.shutdown_timeout_ms "
                    f"{shutdown_ms} ms by at least 5 s")

    # Pod security.
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser", 0) == 0:
        errs.append(f"{where}: securityContext must set runAsNonRoot and a non-zero runAsUser")
    containers = pod.get("containers", [])
    if len(containers) != 1:
        errs.append(f"{where}: expected one container")
        return errs
    c = containers[0]
    cw = f"{where} container {c['name']}"
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        errs.append(f"{cw}: readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        errs.append(f"{cw}: allowPrivilegeEscalation must be false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        errs.append(f"{cw}: capabilities.drop must contain ALL")
    volumes = {v["name"] for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for m in mounts.values():
        if m["name"] not in volumes:
            errs.append(f"{cw}: volumeMount {m['name']} has no volume")
    for path in (c.get("workingDir"), "/tmp"):
        if not path or path not in mounts or mounts[path].get("readOnly"):
            errs.append(f"{cw}: {path} must be a writable volume on a read-only root filesystem")

    # Environment and arguments.
    defined = {e["name"] for e in c.get("env", [])}
    for ef in c.get("envFrom", []):
        ref = ef.get("configMapRef", {}).get("name")
        if ref not in cms:
            errs.append(f"{cw}: envFrom names ConfigMap {ref}, which is not rendered")
        else:
            defined |= set(cms[ref].get("data", {}))
    args = c.get("args", [])
    for a in args:
        for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
            if var not in defined:
                errs.append(f"{cw}: argument {a} uses $({var}), which is not defined")

    # Metrics endpoint and probes.
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    listen = [a.split("=", 1)[1] for a in args if a.startswith("--metrics-listen=")]
    if "metrics" not in ports:
        errs.append(f"{cw}: no container port named metrics")
    elif not listen or listen[0] != f"0.0.0.0:{ports['metrics']}":
        errs.append(f"{cw}: --metrics-listen must be 0.0.0.0:{ports['metrics']} (the kubelet probes the pod IP)")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe, {}).get("httpGet", {})
        if p.get("path") != path or p.get("port") not in ("metrics", ports.get("metrics")):
            errs.append(f"{cw}: {probe} must GET {path} on the metrics port")
    if svc["spec"]["ports"][0].get("targetPort") not in ("metrics", ports.get("metrics")):
        errs.append(f"{cls}: Service port does not target the metrics port")

    # Autoscaling.
    sow = f"{cls}: ScaledObject {so['metadata']['name']}"
    ref = so["spec"].get("scaleTargetRef", {})
    if ref.get("kind") != "StatefulSet" or ref.get("name") != sts["metadata"]["name"]:
        errs.append(f"{sow}: scaleTargetRef {ref} is not the StatefulSet {sts['metadata']['name']}")
    lo, hi = so["spec"].get("minReplicaCount", 0), so["spec"].get("maxReplicaCount", 100)
    if not 1 <= lo <= hi <= partitions:
        errs.append(f"{sow}: need 1 <= minReplicaCount ({lo}) <= maxReplicaCount ({hi}) <= topics.partitions ({partitions})")
    kafka = [t for t in so["spec"].get("triggers", []) if t.get("type") == "kafka"]
    if len(kafka) != 1:
        errs.append(f"{sow}: expected one kafka trigger")
    else:
        md = kafka[0]["metadata"]
        if md.get("consumerGroup") != worker.get("group_id", "triage"):
            errs.append(f"{sow}: consumerGroup {md.get('consumerGroup')} is not worker.group_id {worker.get('group_id')}")
        if md.get("topic") != topics.get("tickets", "tickets"):
            errs.append(f"{sow}: topic {md.get('topic')} is not topics.tickets {topics.get('tickets')}")
        if str(md.get("allowIdleConsumers", "false")).lower() != "false":
            errs.append(f"{sow}: allowIdleConsumers must stay false (replicas beyond the partitions idle)")
        if not md.get("bootstrapServers") or not md.get("lagThreshold"):
            errs.append(f"{sow}: bootstrapServers and lagThreshold are required")

    # Hardware class.
    limits = c.get("resources", {}).get("limits", {})
    device = DEVICE[cls]
    others = [d for d in DEVICE.values() if d and d != device]
    if device and str(limits.get(device)) != "1":
        errs.append(f"{cw}: resources.limits[{device}] must be 1")
    for d in others:
        if d in limits:
            errs.append(f"{cw}: asks for {d}, which belongs to another hardware class")
    if not pod.get("nodeSelector"):
        errs.append(f"{where}: no nodeSelector")
    if device and not any(t.get("key") == device for t in pod.get("tolerations", [])):
        errs.append(f"{where}: no toleration for {device}")
    if "memory" not in c.get("resources", {}).get("limits", {}):
        errs.append(f"{cw}: no memory limit")
    return errs


def mutations():
    """(description, function that breaks a rendered overlay) for --self-test."""
    def sts(docs):
        return next(d for d in docs if d["kind"] == "StatefulSet")

    def so(docs):
        return next(d for d in docs if d["kind"] == "ScaledObject")

    def cont(docs):
        return sts(docs)["spec"]["template"]["spec"]["containers"][0]

    def set_(f):
        def apply(docs):
            f(docs)
            return docs
        return apply
    return [
        ("short grace period", set_(lambda d: sts(d)["spec"]["template"]["spec"].__setitem__("terminationGracePeriodSeconds", 10))),
        ("writable root", set_(lambda d: cont(d)["securityContext"].__setitem__("readOnlyRootFilesystem", False))),
        ("too many replicas", set_(lambda d: so(d)["spec"].__setitem__("maxReplicaCount", 7))),
        ("wrong scale target", set_(lambda d: so(d)["spec"]["scaleTargetRef"].__setitem__("name", "triage"))),
        ("readiness on /healthz", set_(lambda d: cont(d)["readinessProbe"]["httpGet"].__setitem__("path", "/healthz"))),
        ("metrics on loopback", set_(lambda d: cont(d).__setitem__("args", [a.replace("0.0.0.0", "127.0.0.1") for a in cont(d)["args"]]))),
        ("undefined variable", set_(lambda d: cont(d)["args"].append("--x=$(NOPE)"))),
        ("missing tmp mount", set_(lambda d: cont(d).__setitem__("volumeMounts", [m for m in cont(d)["volumeMounts"] if m["mountPath"] != "/tmp"]))),
        ("wrong consumer group", set_(lambda d: so(d)["spec"]["triggers"][0]["metadata"].__setitem__("consumerGroup", "other"))),
        ("root user", set_(lambda d: sts(d)["spec"]["template"]["spec"]["securityContext"].__setitem__("runAsUser", 0))),
    ]


def schema_mutations():
    """Breaks only the API schemas would catch, for --self-test."""
    def cont(docs):
        sts = next(d for d in docs if d["kind"] == "StatefulSet")
        return sts["spec"]["template"]["spec"]["containers"][0]

    def misspelled_probe(docs):
        cont(docs)["readinessProbes"] = cont(docs).pop("readinessProbe")
        return docs

    def port_as_text(docs):
        cont(docs)["ports"][0]["containerPort"] = "metrics"
        return docs

    def pdb_without_spec_type(docs):
        pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
        pdb["spec"]["maxUnavailable"] = {"pods": 1}
        return docs
    return [("misspelled field", misspelled_probe), ("port as text", port_as_text),
            ("PDB budget as an object", pdb_without_spec_type)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kustomize", help="kustomize or kubectl binary (default: found on PATH or in the cache)")
    ap.add_argument("--self-test", action="store_true", help="also break manifests and expect the checks to fail")
    args = ap.parse_args()
    renderer = find_renderer(args.kustomize)
    kv = load_schema_validator()
    with open(os.path.join(ROOT, "topology", "default.yaml")) as f:
        topology_text = f.read()
    with open(os.path.join(HERE, "base", "topology.yaml")) as f:
        if f.read() != topology_text:
            sys.exit("k8s/validate.py: k8s/base/topology.yaml differs from topology/default.yaml: "
                     "cp topology/default.yaml k8s/base/topology.yaml")
    overlays = sorted(os.listdir(os.path.join(HERE, "overlays")))
    if sorted(overlays) != sorted(DEVICE):
        sys.exit(f"k8s/validate.py: overlays {overlays}, expected {sorted(DEVICE)}")
    failures = 0
    for cls in overlays:
        docs = render(renderer, os.path.join(HERE, "overlays", cls))
        errs = check(docs, cls, topology_text) + check_schemas(kv, docs, cls)
        for e in errs:
            print("FAIL " + e)
        failures += len(errs)
        if not errs:
            print(f"ok   {cls}: {len(docs)} objects ({', '.join(sorted(d['kind'] for d in docs))})")
        if args.self_test and not errs:
            for what, breaks in schema_mutations():
                if not check_schemas(kv, breaks(copy.deepcopy(docs)), cls):
                    print(f"FAIL self-test {cls}: '{what}' passed the API schemas")
                    failures += 1
            for what, breaks in mutations():
                if not check(breaks(copy.deepcopy(docs)), cls, topology_text):
                    print(f"FAIL self-test {cls}: '{what}' went unnoticed")
                    failures += 1
    print(f"rendered with: {' '.join(renderer)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
