#!/usr/bin/env node
// Validates custom resources against their operators' published schemas (the CRDs as packaged by
// the @kubernetes-models/* npm packages pinned in package-lock.json). Node >= 20; no network.
//
//   node validate.mjs < objects.json   # stdin: a JSON array of objects
//                                      # stdout: [{index, apiVersion, kind, name, ok, error}, ...]
//   node validate.mjs --kinds          # the (apiVersion, kind) pairs known here, each model loaded
//
// Exit status: 0 every object valid, 1 some object invalid or of an unknown kind, 2 bad input or
// environment. An object whose apiVersion/kind has no entry in MODELS is reported as invalid, so
// a new custom resource cannot pass unvalidated: add its model here (and its package to
// package.json) instead.
//
// Called by eafix.platform.custom_resources (one process per batch); installed by
// `make crd-validate` (`npm ci`).

const MIN_NODE = 20;

// "apiVersion kind" -> [module, export]. Modules are imported on first use only.
const ISTIO = "@kubernetes-models/istio";
const PROM = "@kubernetes-models/prometheus-operator";
const ESO = "@kubernetes-models/external-secrets";
const CM = "@kubernetes-models/cert-manager";
const MODELS = new Map(
  [
    [ISTIO, "security.istio.io/v1", ["PeerAuthentication", "AuthorizationPolicy"]],
    [ISTIO, "networking.istio.io/v1", ["DestinationRule", "Gateway", "VirtualService"]],
    [PROM, "monitoring.coreos.com/v1", ["ServiceMonitor", "PrometheusRule"]],
    [PROM, "monitoring.coreos.com/v1alpha1", ["AlertmanagerConfig"]],
    // The charts render external-secrets.io/v1 by default and v1beta1 on request (values schema enum);
    // the stores are what ExternalSecret.spec.secretStoreRef names.
    [ESO, "external-secrets.io/v1", ["ExternalSecret", "SecretStore", "ClusterSecretStore"]],
    [ESO, "external-secrets.io/v1beta1", ["ExternalSecret", "SecretStore", "ClusterSecretStore"]],
    // Issuer/ClusterIssuer: what Certificate.spec.issuerRef names.
    [CM, "cert-manager.io/v1", ["Certificate", "Issuer", "ClusterIssuer"]],
    ["@kubernetes-models/sealed-secrets", "bitnami.com/v1alpha1", ["SealedSecret"]],
    ["@kubernetes-models/argo-cd", "argoproj.io/v1alpha1", ["Application", "AppProject"]],
  ].flatMap(([pkg, apiVersion, kinds]) =>
    kinds.map((kind) => [`${apiVersion} ${kind}`, [`${pkg}/${apiVersion}/${kind}`, kind]]),
  ),
);

const loaded = new Map();

async function model(apiVersion, kind) {
  const key = `${apiVersion} ${kind}`;
  const entry = MODELS.get(key);
  if (!entry) return null;
  if (!loaded.has(key)) {
    const [specifier, name] = entry;
    const cls = (await import(specifier))[name];
    if (typeof cls !== "function" || cls.apiVersion !== apiVersion || cls.kind !== kind) {
      throw new Error(`${specifier} does not export the ${apiVersion} ${kind} model`);
    }
    loaded.set(key, cls);
  }
  return loaded.get(key);
}

// "/spec/http/0/timeout" -> "spec.http.0.timeout" (JSON Pointer unescaped).
function dotted(pointer) {
  return pointer
    .split("/")
    .slice(1)
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
}

function describe(err) {
  const at = dotted(err.instancePath) || "(root)";
  const p = err.params || {};
  if (err.keyword === "required") return `${at}: must have required property '${p.missingProperty}'`;
  if (err.keyword === "enum") return `${at}: must be one of ${JSON.stringify(p.allowedValues)}`;
  return `${at}: ${err.message}`;
}

function message(err) {
  if (Array.isArray(err?.errors) && err.errors.length) {
    return [...new Set(err.errors.map(describe))].join("; ");
  }
  return String(err?.message ?? err);
}

async function validateOne(obj, index) {
  const isObject = obj !== null && typeof obj === "object" && !Array.isArray(obj);
  const apiVersion = isObject && typeof obj.apiVersion === "string" ? obj.apiVersion : null;
  const kind = isObject && typeof obj.kind === "string" ? obj.kind : null;
  const meta = isObject && obj.metadata && typeof obj.metadata === "object" ? obj.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : null;
  const result = { index, apiVersion, kind, name, ok: false, error: null };
  if (!isObject) {
    result.error = "not a JSON object";
    return result;
  }
  const Model = await model(apiVersion, kind);
  if (!Model) {
    result.error =
      `no @kubernetes-models model for ${apiVersion} ${kind}: ` +
      "add one to ci/crd-validate/validate.mjs (MODELS) and its package to package.json";
    return result;
  }
  try {
    new Model(obj).validate();
    result.ok = true;
  } catch (err) {
    result.error = message(err);
  }
  return result;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function fail(text) {
  process.stderr.write(`crd-validate: ${text}\n`);
  process.exit(2);
}

async function main(argv) {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE) fail(`Node ${MIN_NODE} or newer is required (this is ${process.versions.node})`);

  if (argv.includes("--kinds")) {
    const kinds = [];
    for (const key of MODELS.keys()) {
      const [apiVersion, kind] = key.split(" ");
      await model(apiVersion, kind);
      kinds.push({ apiVersion, kind });
    }
    process.stdout.write(JSON.stringify(kinds) + "\n");
    return 0;
  }
  if (argv.length) fail(`unknown arguments ${JSON.stringify(argv)}; pipe a JSON array of objects on stdin`);

  let objects;
  try {
    objects = JSON.parse(await readStdin());
  } catch (err) {
    fail(`stdin is not JSON: ${err.message}`);
  }
  if (!Array.isArray(objects)) fail("stdin must hold a JSON array of objects");

  const results = [];
  for (const [i, obj] of objects.entries()) results.push(await validateOne(obj, i));
  process.stdout.write(JSON.stringify(results) + "\n");
  return results.every((r) => r.ok) ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => fail(err?.stack ?? String(err)),
);
