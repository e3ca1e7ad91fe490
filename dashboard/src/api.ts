/** The admin API (/_admin/), with the dashboard login's root token. */
const TOKEN_KEY = 'deployd-admin-token';

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Exchanges the master key for a root session token; the key itself is not kept. */
export async function login(masterKey: string): Promise<string> {
  const body = await request<{ token: string }>('POST', '/_admin/login', { masterKey }, null);
  sessionStorage.setItem(TOKEN_KEY, body.token);
  return body.token;
}

export async function request<T = any>(method: string, path: string, body?: unknown, token: string | null = savedToken()): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  // The login ended (logged out elsewhere, idle too long): back to the login form.
  if (res.status === 401 && token && path !== '/_admin/logout') window.dispatchEvent(new Event('deployd-logged-out'));
  if (!res.ok) {
    const detail = json?.errors ? `${json.message}: ${Object.entries(json.errors).map(([k, v]) => `${k} ${v}`).join(', ')}` : json?.message;
    throw new ApiError(detail ?? `${res.status} ${res.statusText}`, res.status);
  }
  return json as T;
}

/** One collection name as one URL segment (`shop/orders` → `shop%2Forders`). */
export const seg = (name: string) => encodeURIComponent(name);

/**
 * Reads the monitor's Server-Sent Events with the token in a header (EventSource cannot send
 * one), reconnecting after a drop; returns a function that stops it.
 */
export function followMonitor(onEntry: (entry: any) => void, onAudience: (update: any) => void, onState: (connected: boolean) => void): () => void {
  let stopped = false;
  let controller: AbortController | undefined;
  const seen = new Set<string>();
  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch('/_admin/monitor', { headers: { authorization: `Bearer ${savedToken()}` }, signal: controller.signal });
        if (!res.ok || !res.body) throw new Error(String(res.status));
        onState(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const lines = block.split('\n');
            const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
            if (!data) continue;
            // Another instance's audience for an event already shown (a cluster with Redis).
            if (lines.includes('event: audience')) {
              onAudience(JSON.parse(data));
              continue;
            }
            const entry = JSON.parse(data);
            if (seen.has(entry.id)) continue; // the kept history again, after a reconnect
            seen.add(entry.id);
            onEntry(entry);
          }
        }
      } catch {
        // dropped: try again below
      }
      onState(false);
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
