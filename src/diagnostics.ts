/**
 * The `isoplug:call` channel (node:diagnostics_channel). While it has a subscriber, every call a version
 * accepts is published when it is sent, and the same object again, with `settled: true`, when its promise
 * settles: a call published once and never again has not settled. Without a subscriber nothing is
 * allocated or published.
 */
import { channel } from 'node:diagnostics_channel';

/** What the `isoplug:call` channel publishes. */
export interface CallMessage {
  readonly pluginName: string;
  readonly version: string;
  readonly method: string;
  /** False when the call is sent, true when it settles. */
  settled: boolean;
}

export const callChannel = channel('isoplug:call');

/** Publishes a call now and returns its settle functions, which publish it again as they settle it. */
export function traceCall(
  pluginName: string,
  version: string,
  method: string,
  resolve: (value: unknown) => void,
  reject: (error: Error) => void,
): [resolve: (value: unknown) => void, reject: (error: Error) => void] {
  const message: CallMessage = { pluginName, version, method, settled: false };
  callChannel.publish(message);
  const settled = () => {
    message.settled = true;
    callChannel.publish(message);
  };
  return [
    (value) => {
      settled();
      resolve(value);
    },
    (error) => {
      settled();
      reject(error);
    },
  ];
}
