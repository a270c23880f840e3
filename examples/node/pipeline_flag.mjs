// A Node pipeline asking `shared_bundle.enabled` from `leadctx serve` over OFREP.
//
// Run: npm ci && LEADCTX_OFREP_URL=http://127.0.0.1:8016 node pipeline_flag.mjs acme initech
//
// The context has the shape Python's `client_context(client_id, pipeline=...)` builds:
// `targetingKey` is the client id, `kind: client`, plus the pipeline. Never put content in it.
// Set LEADCTX_SERVE_TOKEN when the server requires one.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const FLAG = 'shared_bundle.enabled';
const TIMEOUT_MS = 500;

// @openfeature/ofrep-provider 0.1.3 has no request timeout of its own: without one, a hung
// server would hold the draft. Each request is aborted after TIMEOUT_MS, and the SDK then
// answers the default, off: the pipeline takes its own legacy context.
const fetchWithTimeout = (request) => fetch(request, { signal: AbortSignal.timeout(TIMEOUT_MS) });

const token = process.env.LEADCTX_SERVE_TOKEN;
await OpenFeature.setProviderAndWait(
  new OFREPProvider({
    baseUrl: process.env.LEADCTX_OFREP_URL ?? 'http://127.0.0.1:8016',
    headers: token ? [['Authorization', `Bearer ${token}`]] : [],
    fetchImplementation: fetchWithTimeout,
  }),
);
const flags = OpenFeature.getClient('drafts');

function clientContext(clientId, attributes = {}) {
  return { targetingKey: clientId, kind: 'client', ...attributes };
}

for (const clientId of process.argv.slice(2)) {
  const details = await flags.getBooleanDetails(FLAG, false, clientContext(clientId, { pipeline: 'draft' }));
  const path = details.value ? 'shared' : 'legacy';
  console.log(
    `${clientId} flag=${details.value} reason=${details.reason} variant=${details.variant ?? '-'} ` +
      `rule=${details.flagMetadata.source ?? '-'} path=${path} error=${details.errorCode ?? '-'}`,
  );
}
await OpenFeature.close();
