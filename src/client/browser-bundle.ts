/**
 * `/dpd.js`: the compiled client (./index.js, the same file `deployd-ts/client` exports) wrapped
 * in an IIFE that defines `window.dpd` for the app's collections. No bundler: the client module
 * has no imports, so dropping its `export` keywords leaves a plain script.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

let core: string | undefined;

/** The client's compiled source as script text (read once). */
export function clientScriptCore(): string {
  if (core !== undefined) return core;
  const file = fileURLToPath(new URL('./index.js', import.meta.url));
  const source = fs.readFileSync(file, 'utf8');
  const body = source
    .replace(/^\/\/# sourceMappingURL=.*$/m, '')
    // Whole-line comments only (the documentation is in the .ts and .d.ts): smaller, same code.
    .replace(/^[ \t]*\/\*\*[\s\S]*?\*\/[ \t]*\n/gm, '')
    .replace(/^[ \t]*\/\/.*\n/gm, '')
    .replace(/^export (?=(?:async\s+)?function\b|class\b|const\b|let\b|var\b)/gm, '');
  const leftover = /^\s*(?:export|import)\b.*$/m.exec(body);
  if (leftover) throw new Error(`${file}: cannot turn into a script, it has "${leftover[0].trim()}" (the client must not import or re-export)`);
  core = body.trim();
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
