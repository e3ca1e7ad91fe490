/**
 * The protobuf definitions a go-plugin host needs besides our own hooks.proto, inline (protobufjs
 * JSON descriptors, so nothing is fetched or read from disk): the standard gRPC health service and
 * go-plugin's internal controller, stdio and broker services (go-plugin v1.8
 * `internal/plugin/grpc_controller.proto`, `grpc_stdio.proto`, `grpc_broker.proto`). `google.protobuf.Empty` and
 * `plugin.Empty` are both empty messages, so one `plugin.Empty` serves for both on the wire.
 */
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
