// The official OpenFeature OFREP clients, as a Node pipeline would use them, against a running
// `leadctx serve`. Driven by tests/serve/test_node_clients.py; prints one JSON line per answer.
//
//   node clients.mjs server CASES_JSON   each case through @openfeature/server-sdk + OFREPProvider
//   node clients.mjs web CASES_JSON      each case through @openfeature/web-sdk + OFREPWebProvider
//   node clients.mjs watch CONTEXT_JSON  the web provider: print "ready", then the first change
//                                        of the flag that arrives (through its SSE event)
//   node clients.mjs server-watch CONTEXT_JSON
//                                        the server provider: print "ready", then evaluate on
//                                        every call (one every 20 ms) until the answer changes
//
// Environment: OFREP_URL (the server's base URL), OFREP_TOKEN (optional bearer token).
// Node 20 has no global EventSource: the `eventsource` package provides it, as documented.
import { EventSource } from 'eventsource';
import { OpenFeature as ServerOpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature as WebOpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

globalThis.EventSource ??= EventSource;

const baseUrl = process.env.OFREP_URL;
const token = process.env.OFREP_TOKEN;
const headers = token ? [['Authorization', `Bearer ${token}`]] : [];
const FLAG = 'shared_bundle.enabled';

function answer(details) {
  return {
    flagKey: details.flagKey,
    value: details.value,
    variant: details.variant ?? null,
    reason: details.reason ?? null,
    errorCode: details.errorCode ?? null,
  };
}

async function serverCases(cases) {
  await ServerOpenFeature.setProviderAndWait('ofrep', new OFREPProvider({ baseUrl, headers }));
  const client = ServerOpenFeature.getClient('ofrep');
  for (const { flag, context } of cases) {
    console.log(JSON.stringify(answer(await client.getBooleanDetails(flag, false, context))));
  }
  await ServerOpenFeature.close();
}

function webProvider() {
  return new OFREPWebProvider({ baseUrl, headers, pollInterval: 0, cacheMode: 'disabled' });
}

async function webCases(cases) {
  let n = 0;
  for (const { flag, context } of cases) {
    const domain = `case-${n++}`;
    await WebOpenFeature.setContext(domain, context);
    await WebOpenFeature.setProviderAndWait(domain, webProvider());
    const client = WebOpenFeature.getClient(domain);
    console.log(JSON.stringify(answer(client.getBooleanDetails(flag, false))));
  }
  await WebOpenFeature.close();
}

async function watch(context) {
  await WebOpenFeature.setContext('watch', context);
  await WebOpenFeature.setProviderAndWait('watch', webProvider());
  const client = WebOpenFeature.getClient('watch');
  const first = answer(client.getBooleanDetails(FLAG, false));
  console.log(JSON.stringify({ event: 'ready', ...first }));
  await new Promise((resolve) => {
    client.addHandler(ProviderEvents.ConfigurationChanged, () => {
      const now = answer(client.getBooleanDetails(FLAG, false));
      if (now.value !== first.value || now.reason !== first.reason) {
        console.log(JSON.stringify({ event: 'changed', ...now }));
        resolve();
      }
    });
  });
  await WebOpenFeature.close();
}

async function serverWatch(context) {
  await ServerOpenFeature.setProviderAndWait('watch', new OFREPProvider({ baseUrl, headers }));
  const client = ServerOpenFeature.getClient('watch');
  const first = answer(await client.getBooleanDetails(FLAG, false, context));
  console.log(JSON.stringify({ event: 'ready', ...first }));
  for (;;) {
    const now = answer(await client.getBooleanDetails(FLAG, false, context));
    if (now.value !== first.value || now.reason !== first.reason) {
      console.log(JSON.stringify({ event: 'changed', ...now }));
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await ServerOpenFeature.close();
}

const [mode, argument] = process.argv.slice(2);
const modes = { server: serverCases, web: webCases, watch, 'server-watch': serverWatch };
if (!modes[mode] || !baseUrl) {
  console.error('usage: OFREP_URL=http://127.0.0.1:8016 node clients.mjs server|web|watch|server-watch JSON');
  process.exit(2);
}
await modes[mode](JSON.parse(argument));
process.exit(0);
