/**
 * Helper child process for the fan-out scenario (bench/realtime.js): POSTs todos back to back over
 * one keep-alive connection, so that the sender does not wait behind the harness's subscribers
 * (the harness's event loop is busy reading their frames). Started with fork(); gets
 * { url, path, seconds, maxEvents, tag } over IPC, answers { sent, elapsedMs } or { error }, then exits.
 * It exits too if the harness goes away (IPC disconnect).
 */
import { performance } from 'node:perf_hooks';
import { sender, todo } from './realtime.js';

process.once('disconnect', () => process.exit(1));
process.once('message', async ({ url, path, seconds, maxEvents, tag }) => {
  const client = sender(url, path);
  let sent = 0;
  try {
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    while (sent < maxEvents && performance.now() < deadline) {
      await client.post(todo(`rt-${tag}-${sent}`));
      sent++;
    }
    const elapsedMs = performance.now() - t0;
    if (client.connections() !== 1) throw new Error(`the sender used ${client.connections()} connections instead of one keep-alive connection`);
    process.send({ sent, elapsedMs });
  } catch (err) {
    process.send({ error: `${err.message} (after ${sent} POSTs)` });
  } finally {
    client.close();
    process.disconnect();
  }
});
process.send({ ready: true });
