/**
 * The child of bench/baseline-hook-server.js: one isolated-vm isolate (64 MB, as deployd-ts's
 * default limit) holding a trivial validate function, called synchronously with a time limit for
 * each message, as a deployd-ts hook worker calls its sandbox.
 */
import ivm from 'isolated-vm';

const isolate = new ivm.Isolate({ memoryLimit: 64 });
const context = isolate.createContextSync();
const validate = isolate.compileScriptSync(`(function (ctxJson) {
  const ctx = JSON.parse(ctxJson);
  const errors = {};
  const error = (field, message) => { errors[field] = message; };
  (function () { if (!this.title) error('title', 'is required'); }).call(ctx.data);
  return JSON.stringify({ errors, data: ctx.data });
})`).runSync(context, { reference: true });

process.on('message', (message) => {
  const resultJson = validate.applySync(undefined, [message.ctxJson], { timeout: 1000 });
  process.send({ id: message.id, resultJson });
});
process.on('disconnect', () => process.exit(0));
process.send({ t: 'ready' });
