// The task of the piscina and tinypool peers: a no-op.
export default function noop() {}
