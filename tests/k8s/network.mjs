// tests/k8s/network.mjs: the rendered NetworkPolicies, evaluated pod by pod with Kubernetes'
// semantics (a pod selected by no Ingress policy admits everything; one selected by some admits the
// union of their rules; a peer without namespaceSelector means the policy's own namespace; a rule
// without `from` or without `ports` admits every source or port), against the connections the
// system needs and no others.
//
// checkNetwork(objs, DAEMONS) returns [name, problems] pairs: a default deny, then per daemon and
// per database which of the sources below may connect on which port, compared with what is
// expected: the BFF from anywhere on its port; a service from its callers and the monitoring
// namespace on its port; database db-X on 5432 from X and its own instances and the CloudNativePG
// operator, on 8000 (instance manager) from its instances and the operator, on 9187 (metrics) from
// the monitoring namespace; nothing else.

const NAME = "app.kubernetes.io/name";
const OPERATOR_NS = "cnpg-system";
const MONITORING_NS = "monitoring";

function selects(sel, labels) {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = e.key in labels, v = labels[e.key];
    const ok = { In: has && e.values.includes(v), NotIn: !has || !e.values.includes(v), Exists: has, DoesNotExist: !has }[e.operator];
    if (!ok) return false;
  }
  return true;
}

/* Does pod `to` (in the app namespace) admit `from` on TCP port `port` (a number; its name too)? */
function admits(policies, appNs, to, from, port) {
  const applying = policies.filter((p) => selects(p.spec?.podSelector, to.labels) &&
    (p.spec.policyTypes ?? ["Ingress"]).includes("Ingress"));
  if (!applying.length) return true;
  return applying.some((p) => (p.spec.ingress ?? []).some((rule) => {
    const peerOk = !rule.from?.length || rule.from.some((peer) => {
      if (peer.ipBlock) return true; // pod traffic may match an ipBlock: treat it as admitting
      const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, { "kubernetes.io/metadata.name": from.ns })
                                          : from.ns === appNs;
      const podOk = peer.podSelector ? selects(peer.podSelector, from.labels) : true;
      return nsOk && podOk;
    });
    const portOk = !rule.ports?.length || rule.ports.some((rp) => (rp.protocol ?? "TCP") === "TCP" &&
      (rp.port === undefined || rp.port === port || rp.port === to.portNames?.[port] ||
       (rp.endPort !== undefined && typeof rp.port === "number" && port >= rp.port && port <= rp.endPort)));
    return peerOk && portOk;
  }));
}

export function checkNetwork(objs, DAEMONS) {
  const appNs = objs.find((o) => o.kind === "Namespace")?.metadata?.name ?? "default";
  const policies = objs.filter((o) => o.kind === "NetworkPolicy");
  const out = [];

  const deny = policies.filter((p) => p.spec?.podSelector && !Object.keys(p.spec.podSelector).length &&
    (p.spec.policyTypes ?? []).includes("Ingress") && !(p.spec.ingress ?? []).length);
  out.push(["a default deny of ingress for every pod", deny.length ? [] : ["no policy selects every pod and admits nothing"]]);

  // The pods of the app namespace, and the sources that may try to connect.
  const daemonPods = Object.entries(DAEMONS).map(([d, spec]) => {
    const dep = objs.find((o) => o.kind === "Deployment" && o.metadata?.name === d);
    const c = dep?.spec?.template?.spec?.containers?.[0];
    const portNames = Object.fromEntries((c?.ports ?? []).map((p) => [p.containerPort, p.name]));
    return { who: d, ns: appNs, labels: dep?.spec?.template?.metadata?.labels ?? {}, ports: [spec.port], portNames };
  });
  const clusters = objs.filter((o) => o.kind === "Cluster").map((o) => o.metadata.name);
  const dbPods = clusters.map((c) => ({ who: c, ns: appNs, labels: { "cnpg.io/cluster": c, "cnpg.io/instanceRole": "primary" },
                                        ports: [5432, 8000, 9187], portNames: {} }));
  const sources = [
    ...daemonPods, ...dbPods,
    { who: "operator", ns: OPERATOR_NS, labels: { [NAME]: "cloudnative-pg" } },
    { who: "another pod of the operator's namespace", ns: OPERATOR_NS, labels: { [NAME]: "plugin-barman-cloud" } },
    { who: "prometheus", ns: MONITORING_NS, labels: { [NAME]: "prometheus" } },
    { who: "ingress controller", ns: "ingress-nginx", labels: { [NAME]: "ingress-nginx" } },
    { who: "an unlabelled pod of the namespace", ns: appNs, labels: {} },
    { who: "a pod posing as the BFF elsewhere", ns: "elsewhere", labels: { [NAME]: "bff" } },
  ];

  const expected = (to, from, port) => {
    if (to.who === "bff") return true;
    if (to.who in DAEMONS) return from.who === "prometheus" || DAEMONS[to.who].callers.includes(from.who) && from.ns === appNs;
    const service = to.who.replace(/^db-/, "");
    if (port === 5432) return (from.who === service && from.ns === appNs) || from.who === to.who || from.who === "operator";
    if (port === 8000) return from.who === to.who || from.who === "operator";
    return from.who === "prometheus";
  };

  for (const to of [...daemonPods, ...dbPods]) {
    const problems = [];
    for (const port of to.ports)
      for (const from of sources) {
        const got = admits(policies, appNs, to, from, port), want = expected(to, from, port);
        if (got !== want) problems.push(`${from.who} (${from.ns}) → ${to.who}:${port} ${got ? "admitted" : "refused"}, expected ${want ? "admitted" : "refused"}`);
      }
    // A port nobody should reach.
    for (const from of sources)
      if (to.who !== "bff" && admits(policies, appNs, to, from, 22)) problems.push(`${from.who} → ${to.who}:22 admitted`);
    const what = to.who in DAEMONS
      ? (to.who === "bff" ? "anyone on 8080" : `${DAEMONS[to.who].callers.join(", ")} and monitoring on ${to.ports[0]}`)
      : `exactly ${to.who.replace(/^db-/, "")}-service, its instances, the operator; monitoring on 9187`;
    out.push([`${to.who} admits ${what}`, problems]);
  }
  const missing = Object.keys(DAEMONS).filter((d) => d !== "bff" && !clusters.includes(`db-${d}`));
  if (missing.length) out.push(["a database per service", missing.map((d) => `no Cluster db-${d}`)]);
  return out;
}
