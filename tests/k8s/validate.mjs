// tests/k8s/validate.mjs: checks what `kubectl kustomize` rendered from deploy/k8s, offline.
//
//   node validate.mjs BASE.yaml OVERLAY.yaml
//
// Prints one line per check ("ok   NAME" or "FAIL NAME" with the problems under it) and exits 1 when
// one failed. The checks: every object of a built-in kind against the Kubernetes schemas
// (kubernetes-models: types, required fields, formats, enums) and names; the CloudNativePG Cluster
// and ScheduledBackup and the Barman Cloud Plugin's ObjectStore against the fields their APIs
// document (unknown fields refused: the API server would refuse them too); the invariants of the
// deployment (per daemon: probes, limits, non-root, read-only root, image, a Service and a PDB;
// secrets resolve; the network policies admit exactly the expected callers, evaluated pod by pod).
// Last, mutations of the overlay that each check must catch, so that none of them can pass idly.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { checkCnpg, CNPG_KINDS } from "./cnpg.mjs";
import { checkNetwork } from "./network.mjs";

export const DAEMONS = {
  bff: { port: 8080, image: "ls/bff:0.1.0", secrets: ["INTERNAL_TOKEN", "BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"] },
  auth: { port: 8081, image: "ls/auth-service:0.1.0", callers: ["bff"], secrets: ["INTERNAL_TOKEN", "AUTH_DATA_KEY"] },
  teachers: { port: 8082, image: "ls/teachers-service:0.1.0", callers: ["bff", "calendar"] },
  students: { port: 8083, image: "ls/students-service:0.1.0", callers: ["bff", "groups", "calendar"] },
  groups: { port: 8084, image: "ls/groups-service:0.1.0", callers: ["bff", "calendar", "payment"] },
  calendar: { port: 8085, image: "ls/calendar-service:0.1.0", callers: ["bff", "notification"] },
  notification: { port: 8086, image: "ls/notification-service:0.1.0", callers: ["bff", "auth", "calendar"],
                  secrets: ["INTERNAL_TOKEN", "BOT_TOKEN"] },
  payment: { port: 8087, image: "ls/payment-service:0.1.0", callers: ["bff"], secrets: ["INTERNAL_TOKEN", "BOT_TOKEN"] },
};
const SERVICES = Object.keys(DAEMONS).filter((d) => d !== "bff");
const NAME_LABEL = "app.kubernetes.io/name";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const schemaModules = {}; // apiVersion -> the kubernetes-models module of that group and version

async function loadSchemas(objs) {
  for (const o of objs) {
    const av = o?.apiVersion;
    if (typeof av !== "string" || av in schemaModules || CNPG_KINDS[av]) continue;
    try {
      schemaModules[av] = await import(`kubernetes-models/${av}`);
    } catch {
      schemaModules[av] = null;
    }
  }
}

const id = (o) => `${o?.kind}/${o?.metadata?.name}`;
const find = (objs, kind, name) => objs.find((o) => o.kind === kind && o.metadata?.name === name);

/* The object against its schema, and its metadata against the API server's name and label rules. */
function checkObject(o) {
  const problems = [];
  const md = o?.metadata;
  if (!md || typeof md.name !== "string") return ["no metadata.name"];
  if (md.name.length > 253 || !DNS1123_SUBDOMAIN.test(md.name)) problems.push(`bad name ${md.name}`);
  if (["Service", "Namespace"].includes(o.kind) && (md.name.length > 63 || !DNS1035_LABEL.test(md.name)))
    problems.push(`a ${o.kind} name must be a DNS-1035 label: ${md.name}`);
  for (const [k, v] of Object.entries(md.labels ?? {}))
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) problems.push(`bad label ${k}=${v}`);
  if (CNPG_KINDS[o.apiVersion]) return problems.concat(checkCnpg(o));
  const mod = schemaModules[o.apiVersion];
  const Model = mod?.[o.kind];
  if (!Model) return problems.concat(`no schema for ${o.apiVersion} ${o.kind}`);
  try {
    new Model(o).validate();
  } catch (e) {
    problems.push(String(e.message ?? e));
  }
  return problems;
}

const env = (c, name) => (c.env ?? []).find((e) => e.name === name);

/* One daemon's Deployment: image, port, probes, resources, non-root, read-only root, settings. */
function checkDeployment(objs, daemon, overlay) {
  const spec = DAEMONS[daemon];
  const dep = find(objs, "Deployment", daemon);
  if (!dep) return [`no Deployment ${daemon}`];
  const problems = [];
  const pod = dep.spec?.template?.spec ?? {};
  const cs = pod.containers ?? [];
  if (cs.length !== 1) return [`${cs.length} containers, expected 1`];
  const c = cs[0];
  const image = overlay ? c.image?.replace(/^.*\/(ls\/)/, "$1") : c.image;
  if (image !== spec.image) problems.push(`image ${c.image}, expected ${overlay ? "…/" : ""}${spec.image}`);
  const port = (c.ports ?? []).find((p) => p.containerPort === spec.port);
  if (!port) problems.push(`no container port ${spec.port}`);
  if (env(c, "LISTEN")?.value !== `0.0.0.0:${spec.port}`) problems.push(`LISTEN is not 0.0.0.0:${spec.port} (":port" listens on loopback only)`);
  const probe = (kind, path) => {
    const p = c[kind];
    const pp = p?.httpGet?.port;
    if (p?.httpGet?.path !== path) problems.push(`${kind} is not GET ${path}`);
    else if (pp !== spec.port && !(port && pp === port.name)) problems.push(`${kind} is not on port ${spec.port}`);
  };
  probe("readinessProbe", "/readyz");
  probe("livenessProbe", "/healthz");
  for (const r of ["cpu", "memory"]) {
    const req = c.resources?.requests?.[r], lim = c.resources?.limits?.[r];
    if (!req || !lim) problems.push(`${r}: request ${req} limit ${lim}`);
    else if (quantity(req) > quantity(lim)) problems.push(`${r}: request ${req} above limit ${lim}`);
  }
  const sc = { ...pod.securityContext, ...c.securityContext };
  if (sc.runAsNonRoot !== true) problems.push("runAsNonRoot is not true");
  if (sc.runAsUser === 0 || sc.runAsUser === undefined) problems.push(`runAsUser ${sc.runAsUser}`);
  if (c.securityContext?.readOnlyRootFilesystem !== true) problems.push("root file system is not read-only");
  if (c.securityContext?.allowPrivilegeEscalation !== false) problems.push("privilege escalation allowed");
  if (!(c.securityContext?.capabilities?.drop ?? []).includes("ALL")) problems.push("capabilities not dropped");
  if (!(c.envFrom ?? []).some((e) => e.configMapRef?.name?.startsWith("ls-config")))
    problems.push("settings not from the ConfigMap ls-config");
  for (const s of spec.secrets ?? ["INTERNAL_TOKEN"])
    if (!env(c, s)?.valueFrom?.secretKeyRef) problems.push(`${s} not from a Secret`);
  for (const e of c.env ?? [])
    if (/TOKEN|KEY|PASSWORD|DATABASE_URL/.test(e.name) && e.value !== undefined) problems.push(`${e.name} set in clear`);
  if (daemon !== "bff") {
    const ref = env(c, "DATABASE_URL")?.valueFrom?.secretKeyRef;
    if (ref?.name !== `db-${daemon}-app` || ref?.key !== "uri")
      problems.push(`DATABASE_URL is not the "uri" of db-${daemon}-app (CloudNativePG's secret)`);
  }
  return problems;
}

/* Kubernetes quantities, enough to compare a request with a limit. */
function quantity(q) {
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m) return NaN;
  const mult = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(m[1]) * (mult[m[2]] ?? 1);
}

const selects = (sel, labels) =>
  !!sel && Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) && !(sel.matchExpressions?.length);

/* A Service and a PodDisruptionBudget that select the daemon's pods. */
function checkServiceAndPdb(objs, daemon) {
  const dep = find(objs, "Deployment", daemon);
  const labels = dep?.spec?.template?.metadata?.labels ?? {};
  const problems = [];
  const svc = find(objs, "Service", daemon);
  if (!svc || !selects({ matchLabels: svc.spec?.selector }, labels) || !Object.keys(svc.spec?.selector ?? {}).length)
    problems.push(`no Service ${daemon} selecting its pods`);
  else if (!(svc.spec.ports ?? []).some((p) => p.port === DAEMONS[daemon].port))
    problems.push(`Service ${daemon} does not serve port ${DAEMONS[daemon].port}`);
  if (svc?.spec?.type && svc.spec.type !== "ClusterIP" && daemon !== "bff") problems.push(`Service ${daemon} is ${svc.spec.type}`);
  const pdbs = objs.filter((o) => o.kind === "PodDisruptionBudget" && selects(o.spec?.selector, labels));
  if (pdbs.length !== 1) problems.push(`${pdbs.length} PodDisruptionBudgets select ${daemon}'s pods`);
  const replicas = daemon === "bff" ? hpaFor(objs, "bff")?.spec?.minReplicas : dep?.spec?.replicas;
  if (pdbs[0]?.spec?.minAvailable !== undefined && !(replicas > pdbs[0].spec.minAvailable))
    problems.push(`${replicas} replicas with minAvailable ${pdbs[0].spec.minAvailable}: a node could never be drained`);
  return problems;
}

const hpaFor = (objs, name) =>
  objs.find((o) => o.kind === "HorizontalPodAutoscaler" && o.spec?.scaleTargetRef?.kind === "Deployment" &&
                   o.spec.scaleTargetRef.name === name);

/* Every secretKeyRef names a rendered Secret with that key, or a secret CloudNativePG makes for a
 * rendered Cluster; `generatedOnly`: the base renders no Secret at all. */
function checkSecrets(objs, overlay) {
  const problems = [];
  const secrets = objs.filter((o) => o.kind === "Secret");
  if (!overlay && secrets.length) problems.push(`the base holds Secrets: ${secrets.map(id).join(", ")}`);
  const cnpgKeys = ["username", "user", "password", "host", "port", "dbname", "pgpass", "uri", "jdbc-uri", "fqdn-uri"];
  for (const dep of objs.filter((o) => o.kind === "Deployment"))
    for (const c of dep.spec?.template?.spec?.containers ?? [])
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const cluster = /^(.*)-app$/.exec(ref.name)?.[1];
        if (cluster && find(objs, "Cluster", cluster)) {
          if (!cnpgKeys.includes(ref.key)) problems.push(`${id(dep)} ${e.name}: ${ref.name} has no key ${ref.key}`);
        } else if (overlay) {
          const s = find(objs, "Secret", ref.name);
          if (!s) problems.push(`${id(dep)} ${e.name}: no Secret ${ref.name}`);
          else if (!(ref.key in (s.data ?? {})) && !(ref.key in (s.stringData ?? {})))
            problems.push(`${id(dep)} ${e.name}: Secret ${ref.name} has no key ${ref.key}`);
        }
      }
  return problems;
}

/* Only the BFF is reachable from outside: no other LoadBalancer/NodePort Service, Ingress to bff only. */
function checkExposure(objs, overlay) {
  const problems = [];
  for (const s of objs.filter((o) => o.kind === "Service" && ["LoadBalancer", "NodePort"].includes(o.spec?.type)))
    if (!selects({ matchLabels: s.spec.selector }, { [NAME_LABEL]: "bff" }) || !s.spec.selector)
      problems.push(`${id(s)} is ${s.spec.type} and not the BFF's`);
  const ingresses = objs.filter((o) => o.kind === "Ingress");
  for (const ing of ingresses) {
    const backends = [ing.spec?.defaultBackend, ...(ing.spec?.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend))];
    for (const b of backends.filter(Boolean))
      if (b.service?.name !== "bff") problems.push(`${id(ing)} routes to ${b.service?.name ?? "a resource"}`);
  }
  if (overlay && !ingresses.length && !objs.some((o) => o.kind === "Service" && o.spec?.type === "LoadBalancer"))
    problems.push("the overlay exposes nothing (no Ingress, no LoadBalancer Service)");
  const hpa = hpaFor(objs, "bff");
  if (!hpa) problems.push("no HorizontalPodAutoscaler for the BFF");
  else if (find(objs, "Deployment", "bff")?.spec?.replicas !== undefined)
    problems.push("the BFF's Deployment sets replicas although its HorizontalPodAutoscaler owns the count");
  return problems;
}

/* The overlay: one namespace for everything, and the backups configured for every cluster. */
function checkOverlay(objs) {
  const problems = [];
  const ns = objs.find((o) => o.kind === "Namespace")?.metadata?.name;
  if (!ns) problems.push("no Namespace");
  for (const o of objs)
    if (o.kind !== "Namespace" && o.metadata?.namespace !== ns) problems.push(`${id(o)} is in ${o.metadata?.namespace}`);
  return problems;
}

/* All checks of one rendering: [name, problems] pairs. */
export function runChecks(objs, overlay) {
  const tag = overlay ? "overlay" : "base";
  const out = [];
  const bad = objs.map((o) => [id(o), checkObject(o)]).filter(([, p]) => p.length);
  out.push([`${tag}: ${objs.length} objects valid against their schemas`, bad.map(([n, p]) => `${n}: ${p.join("; ")}`)]);
  for (const d of Object.keys(DAEMONS)) {
    out.push([`${tag}: ${d} Deployment (image, port, probes, limits, non-root, read-only, settings)`,
              checkDeployment(objs, d, overlay)]);
    out.push([`${tag}: ${d} has a Service and a PodDisruptionBudget`, checkServiceAndPdb(objs, d)]);
  }
  out.push([`${tag}: secret references resolve${overlay ? "" : "; no Secret in the base"}`, checkSecrets(objs, overlay)]);
  out.push([`${tag}: only the BFF is exposed; it has an autoscaler`, checkExposure(objs, overlay)]);
  for (const [name, problems] of checkNetwork(objs, DAEMONS)) out.push([`${tag}: ${name}`, problems]);
  const cnpg = checkCnpgSet(objs, overlay);
  for (const [name, problems] of cnpg) out.push([`${tag}: ${name}`, problems]);
  if (overlay) out.push([`${tag}: everything in the overlay's namespace`, checkOverlay(objs)]);
  return out;
}

/* Per service database: its Cluster with its database and owner, its ScheduledBackup; in the
 * overlay every cluster archives to an ObjectStore that is rendered and whose secret is. */
function checkCnpgSet(objs, overlay) {
  const out = [];
  for (const s of SERVICES) {
    const problems = [];
    const cl = find(objs, "Cluster", `db-${s}`);
    if (!cl) problems.push(`no Cluster db-${s}`);
    else {
      const init = cl.spec?.bootstrap?.initdb;
      if (init?.database !== s || init?.owner !== s) problems.push(`initdb database/owner ${init?.database}/${init?.owner}, expected ${s}/${s}`);
    }
    const sb = objs.filter((o) => o.kind === "ScheduledBackup" && o.spec?.cluster?.name === `db-${s}`);
    if (sb.length !== 1) problems.push(`${sb.length} ScheduledBackups for db-${s}`);
    if (overlay && cl) {
      const archiver = (cl.spec?.plugins ?? []).find((p) => p.isWALArchiver);
      const store = archiver && find(objs, "ObjectStore", archiver.parameters?.barmanObjectName);
      if (!archiver) problems.push(`db-${s} archives its WAL nowhere (no WAL archiver plugin)`);
      else if (!store) problems.push(`db-${s}: no ObjectStore ${archiver.parameters?.barmanObjectName}`);
      else {
        const cred = store.spec.configuration?.s3Credentials ?? {};
        for (const ref of [cred.accessKeyId, cred.secretAccessKey].filter(Boolean)) {
          const sec = find(objs, "Secret", ref.name);
          if (!sec || !(ref.key in (sec.data ?? {}))) problems.push(`${id(store)}: no Secret ${ref.name} with ${ref.key}`);
        }
      }
      for (const b of sb)
        if (b.spec?.method === "plugin" && !(cl.spec?.plugins ?? []).some((p) => p.name === b.spec.pluginConfiguration?.name))
          problems.push(`${id(b)} uses plugin ${b.spec.pluginConfiguration?.name}, which db-${s} does not load`);
    }
    out.push([`db-${s}: CloudNativePG cluster with database and owner ${s}, scheduled backup${overlay ? ", object store" : ""}`, problems]);
  }
  return out;
}

/* Changes that must each make a named check fail. */
const MUTATIONS = [
  ["a container without a name", "objects valid", (objs) => { delete find(objs, "Deployment", "auth").spec.template.spec.containers[0].name; }],
  ["replicas as a string", "objects valid", (objs) => { find(objs, "Deployment", "groups").spec.replicas = "two"; }],
  ["a Cluster field misspelt", "objects valid", (objs) => { find(objs, "Cluster", "db-auth").spec.instance = 2; }],
  ["a five-field backup schedule", "objects valid", (objs) => { find(objs, "ScheduledBackup", "db-groups").spec.schedule = "0 2 * * *"; }],
  ["no readiness probe", "calendar Deployment", (objs) => { delete find(objs, "Deployment", "calendar").spec.template.spec.containers[0].readinessProbe; }],
  ["no memory limit", "bff Deployment", (objs) => { delete find(objs, "Deployment", "bff").spec.template.spec.containers[0].resources.limits.memory; }],
  ["running as root", "students Deployment", (objs) => { find(objs, "Deployment", "students").spec.template.spec.securityContext.runAsUser = 0; }],
  ["no PodDisruptionBudget", "teachers has a Service", (objs) => { objs.splice(objs.indexOf(find(objs, "PodDisruptionBudget", "teachers")), 1); }],
  ["a database admits another service", "db-students admits", (objs) => {
    find(objs, "NetworkPolicy", "db-students").spec.ingress[0].from.push({ podSelector: { matchLabels: { [NAME_LABEL]: "groups" } } });
  }],
  ["a database admits everyone", "db-auth admits", (objs) => { find(objs, "NetworkPolicy", "db-auth").spec.ingress.push({}); }],
  ["no default deny", "default deny", (objs) => { objs.splice(objs.indexOf(find(objs, "NetworkPolicy", "default-deny-ingress")), 1); }],
  ["a service admits an extra caller", "notification admits", (objs) => {
    find(objs, "NetworkPolicy", "notification").spec.ingress[0].from.push({ podSelector: { matchLabels: { [NAME_LABEL]: "groups" } } });
  }],
  ["a second service exposed", "only the BFF", (objs) => { find(objs, "Service", "auth").spec.type = "LoadBalancer"; }],
  ["payment-service admits the students pods", "overlay: payment admits", (objs) => {
    find(objs, "NetworkPolicy", "payment").spec.ingress[0].from.push({ podSelector: { matchLabels: { [NAME_LABEL]: "students" } } });
  }],
  ["payment-service without the bot's token", "payment Deployment", (objs) => {
    const c = find(objs, "Deployment", "payment").spec.template.spec.containers[0];
    c.env = c.env.filter((e) => e.name !== "BOT_TOKEN");
  }],
  ["payment-service without a database", "a database per service", (objs) => {
    objs.splice(objs.indexOf(find(objs, "Cluster", "db-payment")), 1);
  }],
  ["a missing Secret", "secret references", (objs) => { objs.splice(objs.findIndex((o) => o.kind === "Secret" && o.metadata.name.startsWith("ls-bot-token")), 1); }],
  ["a cluster without WAL archiving", "db-calendar: CloudNativePG", (objs) => { delete find(objs, "Cluster", "db-calendar").spec.plugins; }],
];

async function main() {
  const [basePath, overlayPath] = process.argv.slice(2);
  const load = (p) => yaml.loadAll(readFileSync(p, "utf8")).filter((o) => o !== null && o !== undefined);
  const base = load(basePath), overlay = load(overlayPath);
  await loadSchemas([...base, ...overlay]);
  let passed = 0, failed = 0;
  const report = (name, problems) => {
    if (problems.length) {
      failed++;
      console.log(`FAIL ${name}`);
      for (const p of problems) console.log(`       ${p}`);
    } else {
      passed++;
      console.log(`ok   ${name}`);
    }
  };
  for (const [name, problems] of [...runChecks(base, false), ...runChecks(overlay, true)]) report(name, problems);
  for (const [what, expect, mutate] of MUTATIONS) {
    const objs = structuredClone(overlay);
    let caught;
    try {
      mutate(objs);
      caught = runChecks(objs, true).filter(([n, p]) => p.length && n.includes(expect)).map(([n]) => n);
    } catch (e) {
      caught = [];
      console.log(`       the mutation threw: ${e.message}`);
    }
    report(`caught when broken: ${what}`, caught.length ? [] : [`no check named "…${expect}…" failed`]);
  }
  console.log(`validate: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
