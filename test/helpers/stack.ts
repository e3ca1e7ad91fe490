/**
 * Everything a test file starts (servers, Redis, browsers, peers), recorded as it starts, so that one
 * `after` stops all of it: also what did start when another start failed, and what was still
 * starting when the `before` gave up. A process left running keeps the test file alive (its pipes
 * hold the event loop) and the whole run hangs: this is what prevents it.
 */
import { RedisServer } from './redis.js';
import { startServer, type StartOptions, type TestServer } from './server.js';

type Stop = () => unknown;

export class Stack {
  private readonly stops: Array<{ what: string; stop: Stop }> = [];
  private readonly starting = new Set<Promise<unknown>>();

  /** Records `thing`, stopped by `stop(thing)` when the stack stops; returns it. */
  add<T>(thing: T, stop: (thing: T) => unknown, what = 'resource'): T {
    this.stops.push({ what, stop: () => stop(thing) });
    return thing;
  }

  /** Records a start in flight: `stop()` waits for it to end (started or failed) before stopping. */
  track<T>(start: Promise<T>, stop: (thing: T) => unknown, what = 'resource'): Promise<T> {
    const recorded = start.then((thing) => this.add(thing, stop, what));
    this.starting.add(recorded);
    const forget = () => { this.starting.delete(recorded); };
    recorded.then(forget, forget);
    return recorded;
  }

  /** `startServer`, recorded. */
  server(appDir: string, options?: StartOptions): Promise<TestServer> {
    return this.track(startServer(appDir, options), (s) => s.stop(), `server on ${appDir}`);
  }

  /** `RedisServer.start`, recorded (closed: killed and its folder removed). */
  redis(...args: Parameters<typeof RedisServer.start>): Promise<RedisServer> {
    return this.track(RedisServer.start(...args), (r) => r.close(), 'redis-server');
  }

  /**
   * Waits for every start to end, then returns them all or throws the first failure: unlike
   * `Promise.all`, nothing is still starting (unrecorded) when the `before` fails.
   */
  static async all<T extends readonly unknown[]>(starts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
    const results = await Promise.allSettled(starts);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
  }

  /**
   * Stops everything at once, each within `timeoutMs`: one stop failing or hanging does not keep the
   * others running. Throws afterwards, naming what did not stop.
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    await Promise.allSettled([...this.starting]);
    const outcomes = await Promise.all(this.stops.splice(0).map(async ({ what, stop }) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`${what}: did not stop in ${timeoutMs} ms`), timeoutMs); });
      const stopped = Promise.resolve().then(stop).then(() => undefined, (err: Error) => `${what}: ${err?.message ?? err}`);
      try {
        return await Promise.race([stopped, deadline]);
      } finally {
        clearTimeout(timer);
      }
    }));
    const problems = outcomes.filter((o): o is string => o !== undefined);
    if (problems.length) throw new Error(`could not stop everything:\n${problems.join('\n')}`);
  }
}
