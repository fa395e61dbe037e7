/**
 * The heartbeat agent (`sanbox hb serve`) and the witness (`sanbox hb witness`): the processes
 * around the pure core of src/heartbeat (message, notice, status table, validity, master,
 * decision). See docs/heartbeat.md.
 */
export { HeartbeatAgent, type ReceivedNotice, type WitnessView } from './agent.js';
export { AgentConfigError, checkAgentConfig, loadAgentConfig, type AgentConfig, type ArrayEndpoint, type VolumeEndpoint } from './config.js';
export { Witness, type WitnessOptions } from './witness.js';
export { getJson, postJson, type PostResult } from './peers.js';
export { pinMirror } from './actions.js';
