/**
 * What one request publishes (its changes, its hooks' `emit()`s, session messages), in the order it
 * happened. Hooks and collections only queue; the pipeline (run-request.ts) and a commit release:
 *   - at each commit, what was queued so far goes out, then the change itself — so events leave in
 *     commit order, and a committed change is published even if the rest of the request fails;
 *   - when the request succeeds, the rest goes out, once;
 *   - when it fails, the rest is dropped (nothing uncommitted is ever published).
 */
export class Outbox {
  private queued: Array<() => void> = [];
  private closed = false;

  /** Queues a publication for the next commit or the request's success. */
  add(publish: () => void): void {
    if (this.closed) return; // a request that already ended publishes nothing more
    this.queued.push(publish);
  }

  /** A commit: what was queued before it goes out, then the change. */
  commit(publishChange: () => void): void {
    this.flush();
    publishChange();
  }

  /** The request succeeded: what is still queued goes out, and the outbox closes. */
  release(): void {
    this.flush();
    this.closed = true;
  }

  /** The request failed: what is still queued is dropped, and the outbox closes. */
  discard(): void {
    this.queued = [];
    this.closed = true;
  }

  private flush(): void {
    for (const publish of this.queued.splice(0)) publish();
  }
}
