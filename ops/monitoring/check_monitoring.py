#!/usr/bin/env python3
"""Checks of the monitoring assets, run by CTest (ops/monitoring/CMakeLists.txt).

  check_monitoring.py dashboard --promtool promtool
      Static checks of dashboard.json: valid JSON, unique panel ids, every
      target's PromQL parses (promtool check rules on a generated rule file),
      and every metric it or alerts.yml names is one the probe exports
      (ops/metrics/probe.cc, ops/metrics/server.cc) or a recording rule.

  check_monitoring.py e2e --prometheus prometheus --driver triage_probe_driver
      A real Prometheus server (127.0.0.1, free port, 1 s scrape and rule
      evaluation) scrapes the probe driver, which plays a worker with 80%
      escalations and category drift 0.4; the test asks the HTTP API for the
      recorded escalation ratio and for the alerts, which must be pending
      (their `for:` is minutes long) while the dead-letter alert stays
      inactive, and checks that every metric the dashboard and rules use was
      scraped. Stdlib only; ~10 s.

  check_monitoring.py worker-e2e --prometheus prometheus --triage build/triage --kafka-dir DIR
      The same server scrapes a running `triage worker` (null backend) on the
      kafka_broker fixture's broker: /readyz turns 200 once partitions are
      assigned, the model info and rebalance count are scraped, and every
      rule evaluates healthy against the worker's own series.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Words in PromQL that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "avg", "count", "or",
    "and", "on", "unless", "without", "group_left", "group_right", "delta", "deriv", "round",
    "le", "bool", "ignoring", "offset", "topk", "bottomk", "abs", "time", "absent", "label_values",
    "job", "instance", "outcome", "category", "reason", "backend", "device", "topic", "partition",
    "statistic", "rate_interval", "__rate_interval", "interval",
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def exported_metrics():
    """Metric names the probe and the server export, read from their sources."""
    names = set()
    for rel in ("ops/metrics/probe.cc", "ops/metrics/server.cc"):
        with open(os.path.join(ROOT, rel)) as f:
            src = f.read()
        names.update(re.findall(r'Name\("(triage_[a-z_]+)"\)', src))
        names.update(re.findall(r'gauge_family\("(triage_[a-z_]+)"', src))
    if len(names) < 10:
        fail(f"found only {sorted(names)} in the probe's sources: has the registration changed?")
    histograms = set()
    with open(os.path.join(ROOT, "ops/metrics/probe.cc")) as f:
        histograms.update(re.findall(r'BuildHistogram\(\)\s*\.Name\("(triage_[a-z_]+)"\)', f.read()))
    for h in histograms:
        names.update({h + "_bucket", h + "_sum", h + "_count"})
    return names


def rule_file():
    import yaml  # PyYAML, Debian python3-yaml / pip; only this subcommand needs it
    with open(os.path.join(HERE, "alerts.yml")) as f:
        return yaml.safe_load(f)


def names_in(expr):
    expr = re.sub(r'"[^"]*"', '""', expr)          # label values
    expr = re.sub(r"\[[^\]]*\]", "", expr)          # ranges
    expr = re.sub(r"\{\{[^}]*\}\}", "", expr)        # templates
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
            if (w.startswith("triage_") or w.startswith("triage:")) and w not in PROMQL_WORDS}


def dashboard_targets(dash):
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield p, t


def concrete(expr):
    return expr.replace("$__rate_interval", "5m").replace("$job", ".*")


def check_dashboard(args):
    with open(os.path.join(HERE, "dashboard.json")) as f:
        dash = json.load(f)
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        fail(f"duplicate panel ids in dashboard.json: {ids}")
    for p in dash["panels"]:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            fail(f"panel '{p['title']}' is wider than the 24-column grid")
    rules = rule_file()
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    alert_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    known = exported_metrics() | recorded
    # Every expression parses: write them as recording rules and let promtool judge.
    generated = {"groups": [{"name": "dashboard", "rules": []}]}
    used = set()
    n = 0
    for p, t in dashboard_targets(dash):
        expr = t["expr"]
        if not expr.strip():
            fail(f"panel '{p['title']}' target {t['refId']} has no expression")
        generated["groups"][0]["rules"].append({"record": f"dashboard:check:{n}", "expr": concrete(expr)})
        used |= names_in(expr)
        n += 1
    for e in alert_exprs:
        used |= names_in(e)
    unknown = sorted(used - known)
    if unknown:
        fail(f"dashboard.json or alerts.yml use metrics nobody exports: {unknown}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard_rules.yml")
        with open(path, "w") as f:
            json.dump(generated, f)  # JSON is YAML
        r = subprocess.run([args.promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            fail("a dashboard expression does not parse:\n" + r.stdout + r.stderr)
    print(f"dashboard.json: {len(ids)} panels, {n} expressions parse, {len(used)} metric names all exported")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def wait_for(what, fn, deadline):
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
            last = "not yet"
        except Exception as e:  # server not up yet, etc.
            last = repr(e)
        time.sleep(0.5)
    fail(f"timed out waiting for {what} (last: {last})")


def stop_all(procs, tmp):
    """SIGTERM the processes (newest first), kill those still up after 15 s,
    and remove the scratch directory unless TRIAGE_KEEP_TMP is set."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if os.environ.get("TRIAGE_KEEP_TMP"):
        print("kept " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def check_e2e(args):
    tmp = tempfile.mkdtemp(prefix="triage-prom-")
    procs = []
    try:
        addr_file = os.path.join(tmp, "driver.addr")
        driver = subprocess.Popen([args.driver, "--listen", "127.0.0.1:0", "--address-file", addr_file,
                                   "--escalated", "0.8", "--dead-lettered", "0.005", "--psi", "0.4",
                                   "--seconds", "90"])
        procs.append(driver)
        deadline = time.monotonic() + 50
        wait_for("the driver's address file", lambda: os.path.exists(addr_file), deadline)
        target = open(addr_file).read().strip()
        port = free_port()
        rules = os.path.join(HERE, "alerts.yml")
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: triage
    static_configs:
      - targets: ['{target}']
""")
        log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen([args.prometheus, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port,
                                 "--web.enable-lifecycle"], stdout=log, stderr=subprocess.STDOUT)
        procs.append(prom)
        base = f"http://127.0.0.1:{port}"

        def target_up():
            for proc, name in ((prom, "prometheus"), (driver, "triage_probe_driver")):
                if proc.poll() is not None:
                    log.flush()
                    with open(os.path.join(tmp, "prometheus.log")) as f:
                        tail = f.read()[-3000:]
                    fail(f"{name} exited with {proc.returncode}; prometheus log:\n{tail}")
            ts = api(base, "/api/v1/targets")["activeTargets"]
            return ts and ts[0]["health"] == "up"
        wait_for("Prometheus to scrape the driver", target_up, deadline)

        def ratio():
            res = api(base, "/api/v1/query", query='triage:escalation_ratio:rate10m{job="triage"}')["result"]
            return res and float(res[0]["value"][1])
        r = wait_for("the recorded escalation ratio", ratio, deadline)
        if not 0.7 <= r <= 0.9:
            fail(f"recorded escalation ratio {r}, expected about 0.8 (the driver escalates 80%)")

        def alerts():
            got = {a["labels"]["alertname"]: a for a in api(base, "/api/v1/alerts")["alerts"]}
            return got if {"TriageEscalationRateHigh", "TriageDriftOverThreshold"} <= set(got) else None
        got = wait_for("the escalation and drift alerts", alerts, deadline)
        for name in ("TriageEscalationRateHigh", "TriageDriftOverThreshold"):
            if got[name]["state"] not in ("pending", "firing"):
                fail(f"{name} is {got[name]['state']}")
        if got["TriageDriftOverThreshold"]["labels"].get("statistic") != "psi_category":
            fail(f"drift alert labels: {got['TriageDriftOverThreshold']['labels']}")
        for quiet in ("TriageDeadLetterRate", "TriageNoProgress", "TriageConsumerLagGrowing", "TriageWorkerNotReady"):
            if quiet in got:
                fail(f"{quiet} is {got[quiet]['state']} but the driver gives it no cause")
        # The rules' health as Prometheus sees it: every rule evaluated without error.
        groups = api(base, "/api/v1/rules")["groups"]
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
        if bad:
            fail(f"rules not healthy: {bad}")
        # Every metric the dashboard and the rules use was scraped from the driver.
        scraped = set(api(base, "/api/v1/label/__name__/values"))
        with open(os.path.join(HERE, "dashboard.json")) as f:
            dash = json.load(f)
        used = set()
        for _, t in dashboard_targets(dash):
            used |= names_in(t["expr"])
        for g in rule_file()["groups"]:
            for rule in g["rules"]:
                used |= names_in(rule["expr"])
        missing = sorted(n for n in used if n not in scraped)
        if missing:
            fail(f"used by the dashboard or rules but not scraped from the driver: {missing}")
        print(f"prometheus e2e: escalation ratio {r:.3f}; alerts "
              + ", ".join(f"{k}={v['state']}" for k, v in sorted(got.items()))
              + f"; {len(used)} metric names used, all scraped")
    finally:
        stop_all(procs, tmp)


def check_worker_e2e(args):
    """A real Prometheus scrapes a running `triage worker` (null backend) on
    the broker of the kafka_broker fixture: the worker must become ready
    once it has its partitions, expose its model info and rebalance count,
    and every rule must evaluate without error against its series."""
    tmp = tempfile.mkdtemp(prefix="triage-prom-worker-")
    procs = []
    try:
        with open(os.path.join(args.kafka_dir, "bootstrap")) as f:
            bootstrap = f.read().strip()
        name = "promw%d" % os.getpid()
        config = os.path.join(tmp, "topology.yaml")
        with open(config, "w") as f:
            f.write(f"""kafka:
  settings:
    bootstrap.servers: {bootstrap}
    session.timeout.ms: 6000
topics:
  tickets: {name}.tickets
  escalations: {name}.escalations
  dead_letter: {name}.dlq
  routed_prefix: {name}.routed.
  corrections: {name}.corrections
  partitions: 2
worker:
  group_id: {name}
  transactional_id_prefix: {name}
""")
        taxonomy = os.path.join(ROOT, "data", "banking77", "taxonomy.csv")
        subprocess.run([args.triage, "topics", "create", "--config", config, "--taxonomy", taxonomy],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        worker_port = free_port()
        worker_log = open(os.path.join(tmp, "worker.log"), "w")
        worker = subprocess.Popen([args.triage, "worker", "--config", config, "--backend", "null",
                                   "--taxonomy", taxonomy, "--worker-id", name,
                                   "--metrics-listen", "127.0.0.1:%d" % worker_port],
                                  stdout=worker_log, stderr=subprocess.STDOUT, cwd=tmp)
        procs.append(worker)
        deadline = time.monotonic() + 60
        worker_base = f"http://127.0.0.1:{worker_port}"

        def ready():
            if worker.poll() is not None:
                worker_log.flush()
                fail(f"the worker exited with {worker.returncode}:\n" + open(worker_log.name).read()[-3000:])
            with urllib.request.urlopen(worker_base + "/readyz", timeout=2) as r:
                return r.status == 200
        wait_for("the worker's /readyz to answer 200 (partitions assigned)", ready, deadline)

        port = free_port()
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {os.path.join(HERE, "alerts.yml")}
scrape_configs:
  - job_name: triage
    static_configs:
      - targets: ['127.0.0.1:{worker_port}']
""")
        log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen([args.prometheus, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
        procs.append(prom)
        base = f"http://127.0.0.1:{port}"

        def query(q):
            return api(base, "/api/v1/query", query=q)["result"]
        info = wait_for("the worker's model info in Prometheus",
                        lambda: query('triage_model_info{job="triage",backend="null"}'), deadline)
        if float(info[0]["value"][1]) != 1:
            fail(f"triage_model_info: {info}")
        ready_series = wait_for("triage_ready", lambda: query('triage_ready{job="triage"}'), deadline)
        if float(ready_series[0]["value"][1]) != 1:
            fail(f"triage_ready: {ready_series}")
        rebalances = wait_for("triage_rebalances_total", lambda: query('triage_rebalances_total{job="triage"}'), deadline)
        if sum(float(r["value"][1]) for r in rebalances) < 1:
            fail(f"triage_rebalances_total: {rebalances}")

        def evaluated():
            groups = api(base, "/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(r.get("lastEvaluation", "").startswith("20") and
                                          not r["lastEvaluation"].startswith("0001") for r in rules) else None
        rules = wait_for("every rule to have been evaluated", evaluated, deadline)
        bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
        if bad:
            fail(f"rules not healthy against the worker's series: {bad}")
        firing = [a["labels"]["alertname"] for a in api(base, "/api/v1/alerts")["alerts"]]
        if "TriageWorkerNotReady" in firing:
            fail("TriageWorkerNotReady is active for a ready worker")
        print(f"prometheus worker e2e: worker on :{worker_port} ready, model info scraped, "
              f"{len(rules)} rules evaluated healthy")
    finally:
        stop_all(procs, tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dashboard")
    d.add_argument("--promtool", default="promtool")
    e = sub.add_parser("e2e")
    e.add_argument("--prometheus", default="prometheus")
    e.add_argument("--driver", required=True)
    w = sub.add_parser("worker-e2e")
    w.add_argument("--prometheus", default="prometheus")
    w.add_argument("--triage", required=True)
    w.add_argument("--kafka-dir", required=True, help="the kafka_broker fixture's directory")
    args = ap.parse_args()
    {"dashboard": check_dashboard, "e2e": check_e2e, "worker-e2e": check_worker_e2e}[args.cmd](args)


if __name__ == "__main__":
    main()
