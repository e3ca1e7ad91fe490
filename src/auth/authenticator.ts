/**
 * Who is calling. Root is the master key in `X-Master-Key` (or Deployd's `dpd-ssh-key`); with
 * `--dev`, any `dpd-ssh-key` value is root, as in Deployd's development mode. A key that is sent but
 * wrong is a 401, never a silent fall-back to anonymous.
 */
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../hooks/protocol.js';
import { Errors } from '../errors.js';
import type { MasterKey } from './master-key.js';

export interface Authenticator {
  identify(request: FastifyRequest): Caller;
}

const ANONYMOUS: Caller = Object.freeze({ isRoot: false, me: null });
/** Root via the master key; hooks see it as `me` (go-deployd), so `me.username` works for root. */
const ROOT: Caller = Object.freeze({ isRoot: true, me: Object.freeze({ id: 'root', username: 'root', isRoot: true }) });

export function masterKeyAuthenticator(key: MasterKey, dev: boolean): Authenticator {
  return {
    identify(request) {
      const masterKey = header(request, 'x-master-key');
      const sshKey = header(request, 'dpd-ssh-key');
      if (masterKey === undefined && sshKey === undefined) return ANONYMOUS;
      if (dev && sshKey !== undefined) return ROOT;
      const candidate = masterKey ?? sshKey ?? '';
      if (key.matches(candidate)) return ROOT;
      throw Errors.unauthorized('invalid master key');
    },
  };
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
