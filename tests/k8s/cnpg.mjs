// tests/k8s/cnpg.mjs: the CloudNativePG objects deploy/k8s renders, checked against the fields
// CloudNativePG documents (API reference of postgresql.cnpg.io/v1: Cluster, ScheduledBackup) and
// the Barman Cloud Plugin's ObjectStore (barmancloud.cnpg.io/v1), written from those documents.
//
// checkCnpg(obj) returns a list of problems. For the parts deploy/k8s uses, every field is typed
// and unknown fields are refused (the API server prunes or refuses them, so a misspelt field would
// silently do nothing); fields it does not use are known by name only. Besides the types: the
// operator's admission rules that concern these fields (initdb's database and owner come together,
// one bootstrap method, storage size given, at most one WAL archiver plugin and not next to the
// native barmanObjectStore), the six-field cron schedule of a ScheduledBackup, enums and patterns.

const str = { t: "string" };
const bool = { t: "boolean" };
const int = (min) => ({ t: "integer", min });
const oneOf = (...values) => ({ t: "string", values });
const pattern = (re) => ({ t: "string", re });
const obj = (props, required = []) => ({ t: "object", props, required });
const arr = (items) => ({ t: "array", items });
const mapOf = (values) => ({ t: "map", values });
const opaque = { t: "any" }; // a field known by name, whose content these checks leave to the API server

const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[mkMGTPE]|[KMGTPE]i)?$/;
const quantity = pattern(QUANTITY);
const resources = obj({ requests: mapOf(quantity), limits: mapOf(quantity), claims: opaque });
const secretKeySelector = obj({ name: str, key: str }, ["name", "key"]);
const localRef = obj({ name: str }, ["name"]);

const initdb = obj({
  database: str, owner: str, secret: localRef, options: arr(str), dataChecksums: bool, encoding: str,
  localeCollate: str, localeCType: str, locale: str, localeProvider: str, icuLocale: str, icuRules: str,
  builtinLocale: str, walSegmentSize: int(1), postInitSQL: arr(str), postInitApplicationSQL: arr(str),
  postInitTemplateSQL: arr(str), import: opaque, postInitApplicationSQLRefs: opaque,
  postInitTemplateSQLRefs: opaque, postInitSQLRefs: opaque,
});

const storage = obj({ storageClass: str, size: quantity, resizeInUseVolumes: bool, pvcTemplate: opaque });

const plugin = obj({ name: str, enabled: bool, isWALArchiver: bool, parameters: mapOf(str) }, ["name"]);

// ClusterSpec's fields: typed where deploy/k8s uses them, known by name otherwise.
const CLUSTER_OPAQUE = [
  "description", "inheritedMetadata", "imageCatalogRef", "imagePullPolicy", "schedulerName", "postgresUID",
  "postgresGID", "minSyncReplicas", "maxSyncReplicas", "postgresql", "podSelectorRefs", "replicationSlots",
  "replica", "superuserSecret", "enableSuperuserAccess", "certificates", "imagePullSecrets",
  "serviceAccountTemplate", "serviceAccountName", "walStorage", "ephemeralVolumeSource", "startDelay", "stopDelay",
  "smartShutdownTimeout", "switchoverDelay", "failoverDelay", "livenessProbeTimeout", "affinity",
  "topologySpreadConstraints", "ephemeralVolumesSizeLimit", "priorityClassName", "primaryUpdateMethod", "backup",
  "nodeMaintenanceWindow", "monitoring", "externalClusters", "env", "envFrom", "managed", "seccompProfile",
  "podSecurityContext", "securityContext", "tablespaces", "enablePDB", "probes", "primaryLease",
];
const clusterSpec = obj({
  ...Object.fromEntries(CLUSTER_OPAQUE.map((k) => [k, opaque])),
  instances: int(1),
  imageName: str,
  bootstrap: obj({ initdb, recovery: opaque, pg_basebackup: opaque }),
  storage,
  resources,
  primaryUpdateStrategy: oneOf("unsupervised", "supervised"),
  logLevel: oneOf("error", "warning", "info", "debug", "trace"),
  plugins: arr(plugin),
}, ["instances"]);

const scheduledBackupSpec = obj({
  suspend: bool, immediate: bool, schedule: str, cluster: localRef,
  backupOwnerReference: oneOf("none", "self", "cluster"), target: oneOf("primary", "prefer-standby"),
  method: oneOf("barmanObjectStore", "volumeSnapshot", "plugin"),
  pluginConfiguration: obj({ name: str, parameters: mapOf(str) }, ["name"]),
  online: bool, onlineConfiguration: opaque,
}, ["schedule", "cluster"]);

const s3Credentials = obj({
  accessKeyId: secretKeySelector, secretAccessKey: secretKeySelector, region: secretKeySelector,
  sessionToken: secretKeySelector, inheritFromIAMRole: bool,
});
const barmanConfiguration = obj({
  s3Credentials, azureCredentials: opaque, googleCredentials: opaque, endpointURL: str, endpointCA: secretKeySelector,
  destinationPath: pattern(/^.+$/), serverName: str,
  wal: obj({
    compression: oneOf("bzip2", "gzip", "lz4", "snappy", "xz", "zstd"), encryption: oneOf("AES256", "aws:kms"),
    maxParallel: int(1), archiveAdditionalCommandArgs: arr(str), restoreAdditionalCommandArgs: arr(str),
  }),
  data: obj({
    compression: oneOf("bzip2", "gzip", "lz4", "snappy"), encryption: oneOf("AES256", "aws:kms"), jobs: int(1),
    immediateCheckpoint: bool, additionalCommandArgs: arr(str), restoreAdditionalCommandArgs: arr(str),
  }),
  tags: mapOf(str), historyTags: mapOf(str),
}, ["destinationPath"]);
const objectStoreSpec = obj({
  configuration: barmanConfiguration,
  retentionPolicy: pattern(/^[1-9][0-9]*[dwm]$/),
  instanceSidecarConfiguration: opaque,
}, ["configuration"]);

/* apiVersion -> kind -> spec schema and the rules beyond types. */
export const CNPG_KINDS = {
  "postgresql.cnpg.io/v1": {
    Cluster: [clusterSpec, clusterRules],
    ScheduledBackup: [scheduledBackupSpec, scheduledBackupRules],
  },
  "barmancloud.cnpg.io/v1": {
    ObjectStore: [objectStoreSpec, objectStoreRules],
  },
};

export function checkCnpg(o) {
  const entry = CNPG_KINDS[o.apiVersion]?.[o.kind];
  if (!entry) return [`unknown kind ${o.kind} in ${o.apiVersion}`];
  const [schema, rules] = entry;
  const problems = [];
  for (const k of Object.keys(o))
    if (!["apiVersion", "kind", "metadata", "spec"].includes(k)) problems.push(`unknown field ${k}`);
  if (o.spec === undefined) return problems.concat("spec is required");
  typeCheck(schema, o.spec, "spec", problems);
  if (!problems.length) rules(o.spec, problems);
  return problems;
}

function typeCheck(s, v, path, problems) {
  const fail = (what) => problems.push(`${path}: ${what}`);
  switch (s.t) {
    case "any":
      return;
    case "string":
      if (typeof v !== "string") return fail(`must be a string, is ${JSON.stringify(v)}`);
      if (s.values && !s.values.includes(v)) return fail(`must be one of ${s.values.join(", ")}, is ${v}`);
      if (s.re && !s.re.test(v)) return fail(`must match ${s.re}, is ${v}`);
      return;
    case "boolean":
      if (typeof v !== "boolean") fail("must be a boolean");
      return;
    case "integer":
      if (!Number.isInteger(v)) return fail("must be an integer");
      if (s.min !== undefined && v < s.min) fail(`must be at least ${s.min}`);
      return;
    case "array":
      if (!Array.isArray(v)) return fail("must be a list");
      v.forEach((x, i) => typeCheck(s.items, x, `${path}[${i}]`, problems));
      return;
    case "map":
      if (!v || typeof v !== "object" || Array.isArray(v)) return fail("must be a map");
      for (const [k, x] of Object.entries(v)) typeCheck(s.values, x, `${path}.${k}`, problems);
      return;
    case "object":
      if (!v || typeof v !== "object" || Array.isArray(v)) return fail("must be an object");
      for (const r of s.required) if (v[r] === undefined) fail(`${r} is required`);
      for (const [k, x] of Object.entries(v)) {
        if (!(k in s.props)) fail(`unknown field ${k}`);
        else typeCheck(s.props[k], x, `${path}.${k}`, problems);
      }
      return;
    default:
      throw new Error(`bad schema type ${s.t}`);
  }
}

function clusterRules(spec, problems) {
  const b = spec.bootstrap ?? {};
  if (["initdb", "recovery", "pg_basebackup"].filter((m) => b[m]).length > 1)
    problems.push("spec.bootstrap: only one bootstrap method at a time");
  if (b.initdb && !b.initdb.database !== !b.initdb.owner)
    problems.push("spec.bootstrap.initdb: database and owner come together");
  if (!spec.storage?.size && !spec.storage?.pvcTemplate?.resources?.requests?.storage)
    problems.push("spec.storage: a size (or a storage request in pvcTemplate) is required");
  const archivers = (spec.plugins ?? []).filter((p) => p.enabled !== false && p.isWALArchiver);
  if (archivers.length > 1) problems.push("spec.plugins: more than one WAL archiver plugin");
  if (archivers.length && spec.backup?.barmanObjectStore)
    problems.push("spec.plugins: a WAL archiver plugin next to spec.backup.barmanObjectStore");
  const names = (spec.plugins ?? []).map((p) => p.name);
  if (new Set(names).size !== names.length) problems.push("spec.plugins: a plugin listed twice");
}

/* robfig/cron with seconds: six fields (seconds minutes hours day-of-month month day-of-week), or a
 * descriptor (@daily, @every 1h...). */
function scheduledBackupRules(spec, problems) {
  const s = spec.schedule.trim();
  const field = /^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(\/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(\/[0-9]+)?)*$/;
  if (s.startsWith("@")) {
    if (!/^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every [0-9hms.]+)$/.test(s))
      problems.push(`spec.schedule: unknown descriptor ${s}`);
  } else {
    const f = s.split(/\s+/);
    if (f.length !== 6) problems.push(`spec.schedule: ${f.length} fields, CloudNativePG's cron has 6 (seconds first)`);
    else if (!f.every((x) => field.test(x))) problems.push(`spec.schedule: bad field in ${s}`);
    else {
      const [sec, min, hour] = f.map(Number);
      if (sec > 59 || min > 59 || hour > 23) problems.push(`spec.schedule: out of range ${s}`);
    }
  }
  if (spec.method === "plugin" && !spec.pluginConfiguration)
    problems.push("spec.pluginConfiguration: required with method plugin");
}

function objectStoreRules(spec, problems) {
  const c = spec.configuration;
  if (c.serverName !== undefined) problems.push("spec.configuration.serverName must be left empty (a plugin parameter of the Cluster instead)");
  const s3 = c.s3Credentials;
  if (s3 && !s3.inheritFromIAMRole && !(s3.accessKeyId && s3.secretAccessKey))
    problems.push("spec.configuration.s3Credentials: accessKeyId and secretAccessKey, or inheritFromIAMRole");
  if (/^s3:\/\//.test(c.destinationPath) && !s3) problems.push("spec.configuration: an s3:// path without s3Credentials");
}
