// Version 2 of the plugin the OpenTelemetry example traces.
export function greet(name) {
  return `Good day, ${name}.`;
}

export function validate() {
  return true;
}

export function exit() {
  process.exit(1);
}
