/**
 * Host callbacks for a plugin (`dpd` from Go): the host serves HostService on a socket in the
 * plugin's private directory (mutual TLS with the plugin's certificate as the only trusted client
 * when AutoMTLS is on) and announces it over go-plugin's GRPCBroker stream (ConnInfo, service id
 * BROKER_ID_HOST_SERVICE); the plugin dials it. The stream stays open for the plugin's life:
 * go-plugin closes its broker when it ends.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { serverCertificatePem, type ClientCertificate } from './mtls.js';
import type { PluginLog } from './plugin-log.js';
import { hookDefinition, hostServiceBrokerId, pluginMethod } from './plugin-protos.js';
import { dpdFailure, type ProtoDpdRequest, type ProtoDpdResponse } from './proto-convert.js';

/** What the host does for a plugin's HostService calls. Must not reject. */
export interface HostServiceHandler {
  dpd(request: ProtoDpdRequest): Promise<ProtoDpdResponse>;
}

export interface HostServiceOptions {
  /** The plugin's connection (the broker stream goes over it). */
  client: grpc.Client;
  /** The plugin's private directory: `host.sock` is created there. */
  socketDir: string;
  protoFile: string;
  handler: HostServiceHandler;
  /** With AutoMTLS: the host's certificate, and the plugin's (handshake field 6). */
  clientCert: ClientCertificate | undefined;
  serverCert: string;
  maxMessageBytes: number;
  log: PluginLog;
  /** Whether the plugin is still meant to run (a broker stream that ends then is worth a log line). */
  running(): boolean;
}

/** HostService offered to one plugin; close() is safe at any point, also after a failed open(). */
export class HostService {
  private server: grpc.Server | undefined;
  private broker: grpc.ClientDuplexStream<object, object> | undefined;

  async open(o: HostServiceOptions): Promise<void> {
    const socket = path.join(o.socketDir, 'host.sock');
    const server = new grpc.Server({ 'grpc.max_receive_message_length': o.maxMessageBytes, 'grpc.max_send_message_length': o.maxMessageBytes });
    this.server = server;
    const service = hookDefinition(o.protoFile)['deployd.hooks.v1.HostService'] as protoLoader.ServiceDefinition;
    server.addService(service as unknown as grpc.ServiceDefinition, {
      Dpd: (call: grpc.ServerUnaryCall<ProtoDpdRequest, ProtoDpdResponse>, callback: grpc.sendUnaryData<ProtoDpdResponse>) => {
        o.handler.dpd(call.request).then(
          (res) => callback(null, res),
          (err: Error) => callback(null, dpdFailure(500, err.message)),
        );
      },
    });
    const credentials = o.clientCert
      ? grpc.ServerCredentials.createSsl(
          Buffer.from(serverCertificatePem(o.serverCert)),
          [{ private_key: Buffer.from(o.clientCert.keyPem), cert_chain: Buffer.from(o.clientCert.certPem) }],
          true,
        )
      : grpc.ServerCredentials.createInsecure();
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, credentials, (err) => (err ? reject(err) : resolve())));
    const m = pluginMethod('plugin.GRPCBroker', 'StartStream');
    const stream = o.client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize);
    this.broker = stream;
    stream.on('data', () => {}); // the plugin offers no services of its own
    stream.on('error', (err: grpc.ServiceError) => {
      if (o.running() && err.code !== grpc.status.CANCELLED) o.log('debug', `GRPCBroker stream ended: ${err.message}`, {});
    });
    stream.write({ service_id: hostServiceBrokerId(o.protoFile), network: 'unix', address: socket });
  }

  close(): void {
    this.broker?.cancel();
    this.broker = undefined;
    this.server?.forceShutdown();
    this.server = undefined;
  }
}
