/**
 * go-plugin's handshake, both ways (../shared/reference/go-plugin-host-protocol.md §A.2-A.3): the
 * environment the host starts a plugin with (magic cookie, protocol versions, socket directory,
 * AutoMTLS certificate), and the line the plugin answers on stdout
 * (`CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT`).
 */
import { GoPluginError } from './plugin-error.js';

/** hooks-go's handshake (hooks-go/hooks/serve.go). */
export const MAGIC_COOKIE_KEY = 'DPD_HOOK_PLUGIN';
export const MAGIC_COOKIE_VALUE = 'deployd-ts-go-hooks-0f3c9a7e2b6d4815';
export const PROTOCOL_VERSION = 1;
const CORE_PROTOCOL_VERSION = 1;

export interface Handshake {
  network: 'unix' | 'tcp';
  address: string;
  /** Field 6: the plugin's certificate (AutoMTLS), base64 DER without padding; '' without. */
  serverCert: string;
}

/**
 * The plugin's environment: `base` (the host's, unless not inherited) plus `extra`, with the
 * handshake variables set and go-plugin's others cleared unless this host asks for them.
 */
export function handshakeEnv(base: NodeJS.ProcessEnv, extra: Record<string, string> | undefined, socketDir: string, clientCertPem: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    ...extra,
    [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: String(PROTOCOL_VERSION),
    PLUGIN_MIN_PORT: '10000',
    PLUGIN_MAX_PORT: '25000',
    PLUGIN_UNIX_SOCKET_DIR: socketDir,
  };
  delete env.PLUGIN_CLIENT_CERT;
  delete env.PLUGIN_MULTIPLEX_GRPC;
  if (clientCertPem) env.PLUGIN_CLIENT_CERT = clientCertPem;
  return env;
}

/** Validates go-plugin's handshake line (§A.3); throws a GoPluginError('HANDSHAKE'). */
export function parseHandshake(line: string, name: string): Handshake {
  const parts = line.trim().split('|');
  if (parts.length < 4) {
    throw new GoPluginError(
      'HANDSHAKE',
      `Go plugin ${name}: unrecognized handshake ${JSON.stringify(line.slice(0, 200))} on stdout: ` +
        'is it a Go hook program built with hooks-go (hooks.Serve), for this OS and architecture?',
    );
  }
  const [core, app, network, address, protocol = 'netrpc', cert = ''] = parts;
  if (Number(core) !== CORE_PROTOCOL_VERSION) {
    throw new GoPluginError(
      'HANDSHAKE',
      `Go plugin ${name}: incompatible go-plugin core protocol version ${core} (want ${CORE_PROTOCOL_VERSION})`,
    );
  }
  if (Number(app) !== PROTOCOL_VERSION) {
    throw new GoPluginError(
      'HANDSHAKE',
      `Go plugin ${name}: incompatible hook protocol version ${app} (host speaks ${PROTOCOL_VERSION}); rebuild it against this deployd-ts's hooks-go`,
    );
  }
  if (network !== 'unix' && network !== 'tcp') {
    throw new GoPluginError('HANDSHAKE', `Go plugin ${name}: unsupported network ${JSON.stringify(network)} (want unix)`);
  }
  if (protocol !== 'grpc') {
    throw new GoPluginError('HANDSHAKE', `Go plugin ${name}: speaks protocol ${JSON.stringify(protocol)}; only grpc is supported`);
  }
  if (!address) throw new GoPluginError('HANDSHAKE', `Go plugin ${name}: empty address in handshake`);
  // go-plugin treats field 6 as a certificate only when it is longer than 50 characters.
  return { network, address, serverCert: cert.length > 50 ? cert : '' };
}

/** The gRPC target of a handshake's address (`unix:///…` for a socket). */
export function targetOf(handshake: Handshake): string {
  return handshake.network === 'unix' ? `unix://${handshake.address}` : handshake.address;
}
