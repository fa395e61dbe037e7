/**
 * The lab supervisor (`sanbox up`): supervision of each array (a pure state table,
 * supervision.ts), one run of an array's processes (array-process.ts), the running lab
 * (lab-supervisor.ts), its event stream (events.ts), its control API (control.ts), and the
 * `sanbox fault array-*|site-*` verbs that talk to it (verbs.ts). `updown.ts` runs it.
 */
export { ARRAY_RUN_STATES, SUPERVISION_TRANSITIONS, initialSupervision, isUp, supervise } from './supervision.js';
export type { ArrayRunState, RestartPolicy, Supervision, SupervisionAction, SupervisionInput, Transition } from './supervision.js';
export { SupervisorEvents, type SupervisorEvent } from './events.js';
export { LabSupervisor, chainSiteHooks, type CrashResult, type RestartResult, type SiteHooks } from './lab-supervisor.js';
export { ControlServer } from './control.js';
export { labFaultCommand, type LabFaultFlags, type LabFaultVerb } from './verbs.js';
