// One fleet host for the tests: a process following a deployment with the built `isoplug/fleet`, telling
// the test what happens over IPC and answering its calls. Configured by ISOPLUG_TEST_HOST (JSON: the
// followDeployment options); HOST_ID names it to the plugin versions it runs.
import { followDeployment } from 'isoplug/fleet';

const send = (message) => process.send?.(message);
const options = JSON.parse(process.env.ISOPLUG_TEST_HOST ?? '{}');

let follower;
try {
  follower = await followDeployment(options);
} catch (error) {
  send({ type: 'boot-failed', code: error?.code, message: String(error?.message ?? error) });
  process.disconnect?.();
  process.exitCode = 1;
}

if (follower) {
  follower.on('applied', (event) => send({ type: 'applied', ...event }));
  follower.on('rejected', (event) => send({ type: 'rejected', ...event }));
  follower.on('connected', () => send({ type: 'connected' }));
  follower.on('disconnected', (error) => send({ type: 'disconnected', code: error?.code }));
  process.on('message', (message) => {
    void (async () => {
      if (message.type === 'call') {
        try {
          // A sticky key routes the call as a rollout splits it (the same key, the same version, on every host).
          const api = message.key === undefined ? follower.api : follower.with({ key: message.key }).api;
          send({ type: 'result', id: message.id, value: await api.version() });
        } catch (error) {
          send({ type: 'result', id: message.id, error: error?.code ?? String(error) });
        }
      } else if (message.type === 'close') {
        await follower.close();
        process.disconnect?.();
      }
    })();
  });
  send({ type: 'ready', status: follower.status });
}
