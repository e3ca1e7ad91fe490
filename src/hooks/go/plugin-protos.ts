/**
 * The protobuf definitions a go-plugin host needs: our own hooks.proto (loaded from the file), and
 * besides it, inline (protobufjs
 * JSON descriptors, so nothing is fetched or read from disk): the standard gRPC health service and
 * go-plugin's internal controller, stdio and broker services (go-plugin v1.8
 * `internal/plugin/grpc_controller.proto`, `grpc_stdio.proto`, `grpc_broker.proto`). `google.protobuf.Empty` and
 * `plugin.Empty` are both empty messages, so one `plugin.Empty` serves for both on the wire.
 */
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

const DESCRIPTOR = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } },
                },
              },
            },
          },
        },
      },
    },
    plugin: {
      nested: {
        Empty: { fields: {} },
        GRPCController: { methods: { Shutdown: { requestType: 'Empty', responseType: 'Empty' } } },
        StdioData: {
          fields: { channel: { type: 'Channel', id: 1 }, data: { type: 'bytes', id: 2 } },
          nested: { Channel: { values: { INVALID: 0, STDOUT: 1, STDERR: 2 } } },
        },
        GRPCStdio: {
          methods: { StreamStdio: { requestType: 'Empty', responseType: 'StdioData', responseStream: true } },
        },
        ConnInfo: {
          fields: {
            service_id: { type: 'uint32', id: 1 },
            network: { type: 'string', id: 2 },
            address: { type: 'string', id: 3 },
            knock: { type: 'Knock', id: 4 },
          },
          nested: { Knock: { fields: { knock: { type: 'bool', id: 1 }, ack: { type: 'bool', id: 2 }, error: { type: 'string', id: 3 } } } },
        },
        GRPCBroker: {
          methods: { StartStream: { requestType: 'ConnInfo', responseType: 'ConnInfo', requestStream: true, responseStream: true } },
        },
      },
    },
  },
};

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  enums: String,
  longs: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

let cached: protoLoader.PackageDefinition | undefined;

/** Method definitions of `grpc.health.v1.Health`, `plugin.GRPCController`, `plugin.GRPCStdio` and `plugin.GRPCBroker`. */
export function pluginServices(): protoLoader.PackageDefinition {
  cached ??= protoLoader.fromJSON(DESCRIPTOR as Parameters<typeof protoLoader.fromJSON>[0], LOADER_OPTIONS);
  return cached;
}

/** hooks.proto of this package. */
export const DEFAULT_HOOKS_PROTO = fileURLToPath(new URL('../../../../proto/deployd/hooks/v1/hooks.proto', import.meta.url));

/** A method of `plugin.*` or `grpc.health.v1.*` (pluginServices). */
export function pluginMethod(service: string, name: string): protoLoader.MethodDefinition<object, object> {
  return (pluginServices()[service] as protoLoader.ServiceDefinition)[name];
}

const hookDefinitions = new Map<string, protoLoader.PackageDefinition>();

/** hooks.proto (`file`), loaded once. */
export function hookDefinition(file: string): protoLoader.PackageDefinition {
  let def = hookDefinitions.get(file);
  if (!def) {
    def = protoLoader.loadSync(file, LOADER_OPTIONS);
    hookDefinitions.set(file, def);
  }
  return def;
}

/** `deployd.hooks.v1.HookService`'s Run or RunStream. */
export function hookMethod(file: string, name: 'Run' | 'RunStream'): protoLoader.MethodDefinition<object, object> {
  return (hookDefinition(file)['deployd.hooks.v1.HookService'] as protoLoader.ServiceDefinition)[name];
}

/** The broker id under which the host offers HostService (hooks.proto `BrokerId`). */
export function hostServiceBrokerId(file: string): number {
  const e = hookDefinition(file)['deployd.hooks.v1.BrokerId'] as protoLoader.EnumTypeDefinition;
  const values = (e.type as { value: { name: string; number: number }[] }).value;
  return values.find((v) => v.name === 'BROKER_ID_HOST_SERVICE')!.number;
}
