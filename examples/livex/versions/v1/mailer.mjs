// mailer, version 1. run.mjs copies it to a temp directory as mailer.mjs.
const VERSION = 'v1';

export async function live_send({ to }) {
  return { version: VERSION, text: `Hi ${to}.` };
}

export async function live_inspect(data) {
  return { version: VERSION, ...describe(data) };
}

function describe(data) {
  return {
    to: data.to,
    kinds: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v?.constructor?.name ?? typeof v])),
  };
}
