/** `sanbox events`: a lab's event streams merged (./verbs.ts), read by ./sources.ts, printed by ./render.ts. */
export { addEventsCommand, eventsCommand, type EventsFlags } from './verbs.js';
export { eventLine, typeFilter } from './render.js';
export { labSources, type EventSource, type SourcedEvent } from './sources.js';
