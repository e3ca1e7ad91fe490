/**
 * Deployd's Event resource (`"type": "Event"`, the dpd-event module): its scripts see `url`, `parts`,
 * `query`, `body`, `setResult(…)`, `setStatusCode(…)` besides what every script sees (`me`, `cancel`,
 * `emit`, `dpd`, …); `this` is the answer, `{}` until set. A script is run as a go-deployd
 * `Run(context)` whose body declares those names, so the one runtime serves it: the prefix sits on
 * the script's first line, so errors keep the file's line numbers. `getHeader` answers undefined and
 * `setHeader` does nothing: request and response headers are not part of the hook protocol.
 */
export function eventResourceSource(source: string): string {
  const prefix = [
    'function Run(context) {',
    'var url = ctx.url, body = ctx.body, parts = url.split("/").filter(function (p) { return p; });',
    'var setResult = function (value) { context.setResponseData(typeof value === "string" || typeof value === "object" ? value : String(value)); };',
    'var setStatusCode = function (code) { if (typeof code !== "number") throw new TypeError("Status code must be a number"); context.setResponseStatus(code); };',
    'var getHeader = function () { return undefined; }, setHeader = function () {};',
    'return (function () {',
  ].join(' ');
  return `${prefix} ${source}\n}).call(this);\n}`;
}
