/**
 * `/dpd.js`: the client bundled by esbuild at build time (scripts/build-client.mjs →
 * ./browser-client.js, a script defining `deploydClient`) wrapped in an IIFE that defines
 * `window.dpd` for the app's collections.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

let core: string | undefined;

/** The bundled client script (read once). */
export function clientScriptCore(): string {
  if (core !== undefined) return core;
  const file = fileURLToPath(new URL('./browser-client.js', import.meta.url));
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: \`make build\` bundles the browser client`);
  core = fs.readFileSync(file, 'utf8').trim();
  return core;
}

export interface BrowserClient {
  text: string;
  etag: string;
}

/**
 * The script for an app with these collection paths. Its base URL is where the script was loaded
 * from (`http://host/api/dpd.js` → `http://host/api`), else the page's origin.
 */
export function browserClient(collections: readonly string[], ownChangeEvents: readonly string[] = []): BrowserClient {
  const names = [...collections].sort();
  const own = [...ownChangeEvents].sort();
  const text = `/* dpd.js: deployd-ts browser client. Collections: ${names.length}. */
(function () {
"use strict";
${clientScriptCore()}
var createClient = deploydClient.createClient;
var script = typeof document !== "undefined" && document.currentScript && document.currentScript.src;
var baseUrl = script && /\\/dpd\\.js(?:[?#].*)?$/.test(script) ? script.replace(/\\/dpd\\.js(?:[?#].*)?$/, "") : location.origin;
var dpd = createClient({ baseUrl: baseUrl, collections: ${JSON.stringify(names)}, ownChangeEvents: ${JSON.stringify(own)} });
Object.defineProperty(dpd, "createClient", { value: createClient, enumerable: false });
(typeof window !== "undefined" ? window : globalThis).dpd = dpd;
})();
`;
  const etag = `"${createHash('sha1').update(text).digest('base64url')}"`;
  return { text, etag };
}
