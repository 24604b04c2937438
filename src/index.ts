export { loadPlugin } from './load.js';
export { Plugin } from './plugin.js';
export type { PluginState, CloseReport, PluginStats, PluginCallView, PluginEvents } from './plugin.js';
export type { PluginApi, MethodName, RemoteMethod, CallByName, ReservedName } from './api.js';
export type { LoadOptions, CallOptions, CloseOptions, Transferable } from './options.js';
export { DEFAULTS } from './options.js';
export type { PluginSpecifier } from './resolve.js';
export * from './shared/errors.js';
/** Marks a function argument to be passed to the plugin as a callback (Comlink's `proxy`). */
export { proxy } from 'comlink';
export { createHotSwap, HotSwap } from './hotswap.js';
export type { HotSwapState, SwapReport, SwapEvent, VersionInfo, HotSwapEvents } from './hotswap.js';
export type { HotSwapOptions, SwapOptions, RestartPolicy, HealthCheck } from './hotswap-options.js';
export { HOTSWAP_DEFAULTS } from './hotswap-options.js';
export { PluginManager } from './manager/manager.js';
export type { ReloadResult, EachResult, ManagerEvents } from './manager/manager.js';
export type { PluginManagerOptions } from './manager/options.js';
export { MANAGER_DEFAULTS } from './manager/options.js';
export type { ManagerFs } from './manager/scan.js';
