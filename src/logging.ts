/**
 * The server log: JSON lines for machines (the default when stdout is not a terminal), or
 * readable lines for a developer (pino-pretty, when stdout is a terminal or with --dev). A hook's
 * lines start with its file (`[todos/post.js] …`); fields a message already says are not repeated.
 * pino-pretty (and its streams) is loaded only for the pretty format.
 */

export type LogFormat = 'json' | 'pretty';

/** Pretty on a terminal or in development, JSON otherwise (pipes, files, log collectors). */
export function defaultLogFormat(dev: boolean, isTTY = process.stdout.isTTY === true): LogFormat {
  return dev || isTTY ? 'pretty' : 'json';
}

/** Fields of the pretty format's messages that are in the message text already. */
const SAID_IN_MESSAGE = 'pid,hostname,hookLog,file,event,hooks,files';

/** A stream for pino (Fastify's `logger.stream`); undefined for JSON to stdout. */
export async function logStream(format: LogFormat): Promise<NodeJS.WritableStream | undefined> {
  if (format === 'json') return undefined;
  const { default: pretty } = await import('pino-pretty');
  return pretty({
    colorize: process.stdout.isTTY === true,
    translateTime: 'HH:MM:ss.l',
    ignore: SAID_IN_MESSAGE,
    singleLine: true,
    messageFormat: '{if file}[{file}] {end}{msg}',
    sync: true,
  });
}
