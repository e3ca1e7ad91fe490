/** What a request answers, whatever the transport (REST, the admin API, a hook's `dpd` call). */

/** What a request asks of the client's session cookie besides its body (login, logout). */
export type SessionChange = { token: string; maxAgeMs: number } | { clear: true };

/** A response body that is already JSON text (lists read straight from the store). */
export class RawJson {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

/** The body and, when a hook changed it, the status; login and logout also change the session. */
export interface Answer {
  body: unknown;
  status?: number;
  session?: SessionChange;
}

export function answer(body: unknown, status?: number): Answer {
  return status ? { body, status } : { body };
}
