// Version 1 of the plugin the OpenTelemetry example traces.
export function greet(name) {
  return `Hello, ${name}!`;
}

/** Fails as a validation library would: its data (`issues`) travels with the error. */
export function validate(input) {
  const error = new Error('invalid input');
  error.name = 'ValidationError';
  error.issues = [{ path: ['name'], message: 'Required', received: input }];
  throw error;
}

/** Ends the worker: the version crashes. */
export function exit() {
  process.exit(1);
}
