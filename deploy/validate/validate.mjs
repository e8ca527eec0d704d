// Validates every manifest in deploy/k8s against the Kubernetes API's published schemas (the
// kubernetes-models package carries them), and holds the project's own rules: every Deployment
// has a readiness probe on /readyz and a liveness probe on /healthz, configuration and secrets
// come from the ConfigMap and Secret, and no image runs as root.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";

const dir = process.argv[2];
const modules = {
  v1: await import("kubernetes-models/v1"),
  "apps/v1": await import("kubernetes-models/apps/v1"),
  "batch/v1": await import("kubernetes-models/batch/v1"),
};
let failures = 0;
let checked = 0;
const fail = (where, message) => {
  failures += 1;
  console.error(`${where}: ${message}`);
};
for (const file of readdirSync(dir).filter((name) => name.endsWith(".yaml"))) {
  for (const doc of yaml.loadAll(readFileSync(join(dir, file), "utf8")).filter(Boolean)) {
    const where = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    const Model = modules[doc.apiVersion]?.[doc.kind];
    if (!Model) {
      fail(where, `no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (error) {
      fail(where, `${error.message}\n${JSON.stringify(error.errors ?? [], null, 2)}`);
    }
    const pod = doc.kind === "Job" || doc.kind === "Deployment" ? doc.spec.template.spec : null;
    if (pod) {
      if (!pod.securityContext?.runAsNonRoot) fail(where, "pods run as non-root");
      for (const container of pod.containers) {
        const sources = (container.envFrom ?? []).map((source) => Object.keys(source)[0]);
        if (!sources.includes("configMapRef") || !sources.includes("secretRef")) {
          fail(where, "configuration from the ConfigMap and secrets from the Secret");
        }
        if (doc.kind === "Deployment") {
          if (container.readinessProbe?.httpGet?.path !== "/readyz") fail(where, "readiness probe on /readyz");
          if (container.livenessProbe?.httpGet?.path !== "/healthz") fail(where, "liveness probe on /healthz");
        }
      }
    }
    checked += 1;
  }
}
console.log(`${checked} Kubernetes objects checked, ${failures} problems`);
process.exit(failures === 0 && checked > 0 ? 0 : 1);
