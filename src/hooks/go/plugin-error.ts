/**
 * Why a Go plugin could not start or answer. The kinds are internal (the runner turns them into
 * hook results: ../hook-result.ts), not API error codes.
 */
import type * as grpc from '@grpc/grpc-js';

export type GoPluginErrorCode =
  | 'SPAWN' // the binary could not be started (ENOENT, EACCES…)
  | 'START_TIMEOUT' // no handshake / not healthy within startTimeoutMs
  | 'EXITED' // the plugin exited (before the handshake, or during a call)
  | 'HANDSHAKE' // the handshake line is not what we speak
  | 'UNHEALTHY' // the health check failed
  | 'DEADLINE' // a Run did not finish within its deadline
  | 'RPC' // any other gRPC error of a Run
  | 'STOPPED'; // the plugin was stopped

export class GoPluginError extends Error {
  constructor(
    readonly code: GoPluginErrorCode,
    message: string,
    readonly grpcCode?: grpc.status,
  ) {
    super(message);
    this.name = 'GoPluginError';
  }
}
